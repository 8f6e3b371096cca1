"""The download cache (`default_cache_dir`) and `prepare`: fetch, extract and scan what is missing, reuse
what is cached, merge the packages' catalogues."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from training.datasets.sources.catalogue import CATALOGUE_VERSION, Catalogue, drop_cross_package_duplicates, scan
from training.datasets.sources.common import MARKER, SCAN_FILE, SourceError
from training.datasets.sources.fetch import download_deb, extract_package, find_deb
from training.datasets.sources.packages import SOURCES, PackageSource, resolve_packages


def default_cache_dir() -> Path:
    """`$MDSGEN_FOLEY_CACHE`, else `~/.cache/mdsgen-foley` (outside the repository on purpose)."""
    env = os.environ.get("MDSGEN_FOLEY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mdsgen-foley"


def load_part(source: PackageSource, pkg_dir: Path, marker: dict[str, Any], log=print) -> Catalogue:
    """The scan of one extracted package, from its cache (`catalogue.json`) when current, else scanned now."""
    scan_path = pkg_dir / SCAN_FILE
    if scan_path.exists():
        saved = json.loads(scan_path.read_text())
        if saved.get("version") == CATALOGUE_VERSION and saved.get("marker") == marker:
            return Catalogue.from_json(saved["catalogue"])
    log(f"scan: {pkg_dir} ...")
    part = scan(source, pkg_dir)
    scan_path.write_text(json.dumps({"version": CATALOGUE_VERSION, "marker": marker,
                                     "catalogue": part.to_json(fingerprints=True)}))
    return part


def prepare(
    cache_dir: Path,
    packages: list[str] | None = None,
    *,
    download: bool = True,
    log=print,
) -> Catalogue:
    """Download (if needed and allowed), extract (if needed) and scan (cached) every source package (`packages`:
    package or short names, default all), and merge them, dropping cross-package duplicates.

    Extraction is redone when the marker is missing or the rules changed; the scan is cached in
    `extracted/<package>/catalogue.json` and redone when the marker or the catalogue version changed. With
    downloads off and no `packages` named, the packages that are neither extracted nor downloaded are left out
    (and said so); a named one that is missing is an error.
    """
    cat = Catalogue()
    extracted = cache_dir / "extracted"
    names = resolve_packages(packages)
    if not packages and not download:
        have = [n for n in names if (extracted / n / MARKER).exists() or find_deb(cache_dir / "debs", n)]
        if have and len(have) < len(names):
            log(f"offline: leaving out {', '.join(n for n in names if n not in have)} (not downloaded; run "
                "`python -m training.datasets.foley_real fetch`)")
            names = have
    for name in names:
        source = SOURCES[name]
        pkg_dir = extracted / source.package
        marker_path = pkg_dir / MARKER
        marker = json.loads(marker_path.read_text()) if marker_path.exists() else None
        if marker is None or marker.get("rules_digest") != source.rules_digest():
            if not download and find_deb(cache_dir / "debs", source.package) is None:
                raise SourceError(
                    f"{source.package} is not extracted in {extracted} and downloads are off: run "
                    "`python -m training.datasets.foley_real fetch` (or build without --offline)."
                )
            log(f"fetch: apt-get download {source.package} into {cache_dir / 'debs'} ...")
            deb = download_deb(source.package, cache_dir / "debs")
            log(f"extract: {deb.name} -> {pkg_dir} ...")
            extract_package(source, deb, extracted)
            marker = json.loads(marker_path.read_text())
            log(f"extract: {marker['files']} files, {marker['bytes'] / 1e6:.0f} MB")
        cat.merge(load_part(source, pkg_dir, marker, log))
    drop_cross_package_duplicates(cat, names)
    return cat


def extracted_packages(cache_dir: Path) -> list[str]:
    """The catalogue's packages that are extracted in `cache_dir` (in catalogue order)."""
    return [p for p in SOURCES if (cache_dir / "extracted" / p / MARKER).exists()]
