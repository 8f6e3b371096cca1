"""Download and extraction: `apt-get download` into `<cache>/debs` (no system install) and
`extract_package`, which streams `dpkg-deb --fsys-tarfile` and keeps only what the package's rules select."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from training.datasets.sources.common import FILES_META, MARKER, SourceError, sha256_file
from training.datasets.sources.containers import iter_container, iter_zip_stream
from training.datasets.sources.packages import PackageSource


def find_deb(debs_dir: Path, package: str) -> Path | None:
    """The newest cached .deb of `package` in `debs_dir`, if any."""
    found = sorted(debs_dir.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download_deb(package: str, debs_dir: Path) -> Path:
    """`apt-get download PACKAGE` into `debs_dir` (no system install); reuses a cached .deb."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    cached = find_deb(debs_dir, package)
    if cached is not None:
        return cached
    if shutil.which("apt-get") is None:
        raise SourceError(f"apt-get is not available: download {package}'s .deb by hand into {debs_dir}")
    proc = subprocess.run(["apt-get", "download", package], cwd=debs_dir, capture_output=True, text=True)
    deb = find_deb(debs_dir, package)
    if proc.returncode != 0 or deb is None:
        raise SourceError(
            f"apt-get download {package} failed ({proc.stderr.strip()[-400:]}). Run `apt-get update` first "
            "(as root), and check that Debian's main component is configured."
        )
    return deb


def deb_field(deb: Path, name: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _write_member(root: Path, rel: str, data: bytes) -> None:
    dest = root / rel
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        raise SourceError(f"refusing to extract {rel!r} outside {root}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)


def extract_package(source: PackageSource, deb: Path, extracted_root: Path) -> Path:
    """Extract what `source`'s rules select from `deb` into `extracted_root/<package>`; returns that folder.

    Streams `dpkg-deb --fsys-tarfile`; an archive inside the package (`source.archive`) is read as a zip stream,
    the package's containers by `iter_container`. Writes `EXTRACTED.json` last, so an interrupted extraction is
    redone.
    """
    dest = extracted_root / source.package
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copyright_path = f"usr/share/doc/{source.package}/copyright"
    counts = {"files": 0, "bytes": 0}
    found_archive = False
    containers = {c.path: c for c in source.containers}
    found_containers: set[str] = set()
    facts: dict[str, dict] = {}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None

    def keep(rel: str, data: bytes) -> None:
        _write_member(dest, rel, data)
        counts["files"] += 1
        counts["bytes"] += len(data)

    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name.lstrip("./")
                if not member.isfile():
                    continue
                if path == copyright_path:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    _write_member(dest, path, fh.read())
                elif source.archive is not None and path == source.archive:
                    found_archive = True
                    fh = tar.extractfile(member)
                    assert fh is not None
                    for name, data in iter_zip_stream(fh, source.wanted):
                        keep(name, data)
                elif path in containers:
                    found_containers.add(path)
                    fh = tar.extractfile(member)
                    assert fh is not None
                    for rel, data, fact in iter_container(containers[path], fh, member.size, source.wanted):
                        keep(rel, data)
                        if fact:
                            facts[rel] = fact
                elif source.archive is None and source.wanted(path):
                    fh = tar.extractfile(member)
                    assert fh is not None
                    keep(path, fh.read())
    finally:
        with contextlib.suppress(Exception):
            proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
    if code != 0:
        raise SourceError(f"dpkg-deb could not read {deb.name}: {err.strip()[-300:]}; delete it and download again")
    if source.archive is not None and not found_archive:
        raise SourceError(f"{deb.name} holds no {source.archive}: is it the right package version?")
    missing = sorted(set(containers) - found_containers)
    if missing:
        raise SourceError(f"{deb.name} holds no {', '.join(missing)}: is it the right package version?")
    if facts:
        (dest / FILES_META).write_text(json.dumps(facts, indent=1, sort_keys=True))
    marker = {
        "package": source.package,
        "version": deb_field(deb, "Version"),
        "deb": deb.name,
        "deb_sha256": sha256_file(deb),
        "archive": source.archive,
        "rules_digest": source.rules_digest(),
        **counts,
    }
    if source.containers:
        marker["containers"] = [c.path for c in source.containers]
    (dest / MARKER).write_text(json.dumps(marker, indent=1))
    return dest
