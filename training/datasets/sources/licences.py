"""Licences: the DEP-5 `debian/copyright` stanzas, the licence of a file (the last matching stanza
wins) under every path the copyright may name it by, and SPDX-style names of free-form licence statements."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from training.datasets.sources.packages import PackageSource


@dataclass(frozen=True)
class CopyrightStanza:
    files: tuple[str, ...]
    copyright: str
    licence: str
    source: str = ""  # a stanza's own Source (sonic-pi-samples names each file's freesound page)


def parse_copyright(text: str) -> list[CopyrightStanza]:
    """The `Files:` stanzas of a machine-readable debian/copyright, in file order ([] for a free-form one)."""
    stanzas: list[CopyrightStanza] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields:
            stanzas.append(CopyrightStanza(
                files=tuple(fields["files"].split()),
                copyright=" / ".join(s for s in fields.get("copyright", "").splitlines() if s),
                licence=fields.get("license", "").splitlines()[0].strip() if fields.get("license") else "",
                source=" ".join(fields.get("source", "").split()),
            ))
    return stanzas


def licence_for(stanzas: list[CopyrightStanza], *paths: str) -> tuple[str, str]:
    """(licence, copyright) of the last stanza whose Files pattern matches any of `paths` (DEP-5 rule); a stanza's
    Source is appended to its copyright."""
    found = ("unknown", "unknown")
    for st in stanzas:
        if any(fnmatch.fnmatchcase(p, pat) for pat in st.files for p in paths):
            cop = st.copyright or "unknown"
            found = (st.licence or "unknown", f"{cop} ({st.source})" if st.source else cop)
    return found


def copyright_paths(source: PackageSource, rel: str) -> list[str]:
    """The paths under which debian/copyright may name an extracted file: its local path, its path in the package
    (container members as `container!/member`, and the container itself) and the package's upstream aliases."""
    pkg = source.package_path(rel)
    paths = [rel, pkg]
    if "!/" in pkg:
        paths.append(pkg.split("!/", 1)[0])
    for installed, upstream in source.copyright_aliases:
        paths += [upstream + p[len(installed):] for p in list(paths) if p.startswith(installed)]
    return paths


_LICENCE_NAMES = (
    (r"Creative Commons Zero 1\.0|CC0", "CC0-1.0"),
    (r"Creative Commons Attribution-ShareAlike 3\.0|CC[- ]BY-SA[- ]3\.0", "CC-BY-SA-3.0"),
    (r"Creative Commons Attribution 3\.0|CC[- ]BY[- ]3\.0", "CC-BY-3.0"),
    (r"Public Domain", "public-domain"),
)


def spdx_licence(description: str) -> str:
    """The licence a description states after `License:` as an SPDX-style name ("unknown" if none is stated)."""
    m = re.search(r"Licen[cs]e:\s*(.*)", description)
    if not m:
        return "unknown"
    text = m.group(1)
    for pat, name in _LICENCE_NAMES:
        if re.search(pat, text):
            return name
    return text.strip().rstrip(".") or "unknown"
