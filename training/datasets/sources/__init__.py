"""Source packages: download with `apt-get download`, extract only the Foley-relevant files, catalogue them.

Nothing is installed into the system. A package's .deb goes to `<cache>/debs/`; the files its rules (`packages`)
select are extracted to `<cache>/extracted/<package>/` together with the package's `debian/copyright` at
`usr/share/doc/<package>/copyright` and a marker `EXTRACTED.json`. Plain files land at their path inside the
package; members of a container the package ships land under the container's path: 0 A.D.'s `public.zip` (the
package's `archive`: its members at their path inside it), OpenArena's `pak0.pk3` (a zip) and OpenTTD's
`opensfx.cat` (`read_cat`, a table of RIFF entries that carry their own title, credit and licence) as
`<container path>/<member>`. The extraction streams: `dpkg-deb --fsys-tarfile` is read as a tar stream and the
(stored or deflated) zip inside it member by member, so the 3.3 GB `public.zip` never lands on disk; only what
the rules select does. Per-file facts that only the container knows (OpenSFX's licence per entry) are kept in
`FILES.json` beside the marker.

`scan` turns an extracted folder into a `Catalogue`: every selected recording with its category, length, onset,
sample rate (`full_band`: 44.1 kHz or more, what the 48 kHz bandwidth extension may train on) and licence (from
the DEP-5 `debian/copyright`: the last `Files:` stanza that matches wins; a container's own per-file licence where
it has one; the package's stated licence where its debian/copyright is not machine-readable), every art file by
role, and every file that was skipped with the reason (undecodable, empty, silent, too short, a duplicate of
another recording, or the same recording filed under two categories). `prepare` merges the packages' catalogues
and drops a recording that duplicates one of an earlier package (`drop_cross_package_duplicates`).

Recording ids are `<package>:<path>` with the path inside the package (container members as `container!/member`).

The package: `packages` (the rule types and every package's rules), `fetch` (download and extraction),
`containers` (.cat, streamed and in-memory zips), `licences` (debian/copyright, SPDX names), `catalogue`
(`Recording`, `ArtFile`, `Catalogue`, `scan`), `cache` (`prepare`) and `common` (marker files, `SourceError`).
"""

from training.datasets.sources.cache import default_cache_dir, extracted_packages, load_part, prepare
from training.datasets.sources.catalogue import (
    CATALOGUE_VERSION,
    FULL_BAND_RATE,
    MIN_AMBIENCE_SECONDS,
    MIN_EVENT_SECONDS,
    ONSET_FLOOR_FACTOR,
    ONSET_REL_DB,
    SILENT_PEAK_DB,
    ArtFile,
    Catalogue,
    Recording,
    drop_cross_package_duplicates,
    onset_index,
    scan,
)
from training.datasets.sources.common import FILES_META, MARKER, SCAN_FILE, SourceError, sha256_file
from training.datasets.sources.containers import (
    MAX_IN_MEMORY_CONTAINER,
    CatEntry,
    iter_container,
    iter_zip_stream,
    read_cat,
)
from training.datasets.sources.fetch import deb_field, download_deb, extract_package, find_deb
from training.datasets.sources.licences import (
    CopyrightStanza,
    copyright_paths,
    licence_for,
    parse_copyright,
    spdx_licence,
)
from training.datasets.sources.packages import (
    MEGAGLEST,
    OPENARENA,
    OPENSFX,
    SONIC_PI,
    SOURCES,
    WESNOTH,
    WIDELANDS,
    ZERO_AD,
    ArtRule,
    AudioRule,
    Container,
    PackageSource,
    resolve_packages,
)

__all__ = [
    "CATALOGUE_VERSION", "FILES_META", "FULL_BAND_RATE", "MARKER", "MAX_IN_MEMORY_CONTAINER", "MEGAGLEST",
    "MIN_AMBIENCE_SECONDS", "MIN_EVENT_SECONDS", "ONSET_FLOOR_FACTOR", "ONSET_REL_DB", "OPENARENA", "OPENSFX",
    "SCAN_FILE", "SILENT_PEAK_DB", "SONIC_PI", "SOURCES", "WESNOTH", "WIDELANDS", "ZERO_AD", "ArtFile", "ArtRule",
    "AudioRule", "CatEntry", "Catalogue", "Container", "CopyrightStanza", "PackageSource", "Recording",
    "SourceError", "copyright_paths", "deb_field", "default_cache_dir", "download_deb",
    "drop_cross_package_duplicates", "extract_package", "extracted_packages", "find_deb", "iter_container",
    "iter_zip_stream", "licence_for", "load_part", "onset_index", "parse_copyright", "prepare", "read_cat",
    "resolve_packages", "scan", "sha256_file", "spdx_licence",
]
