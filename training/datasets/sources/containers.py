"""Containers inside a package: OpenTTD's .cat sound container (`read_cat`), zips read as a stream
(`iter_zip_stream`: 0 A.D.'s 3.3 GB public.zip never lands on disk) or whole (`iter_container`)."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from training.datasets.sources.common import SourceError
from training.datasets.sources.licences import spdx_licence
from training.datasets.sources.packages import Container

# Containers read whole into memory (a random-access zip) up to this size; bigger zips are streamed.
MAX_IN_MEMORY_CONTAINER = 512 << 20


@dataclass
class CatEntry:
    """One sound of an OpenTTD .cat: its index, the source file name it was built from, its description (title,
    credit, licence), and its RIFF WAV bytes."""

    index: int
    filename: str  # e.g. "osfx_36.wav" (from the entry's trailer), or "entry_36.wav"
    description: str
    data: bytes

    @property
    def title(self) -> str:
        m = re.match(r'\s*"([^"]*)"', self.description)
        return m.group(1) if m else self.description.split(".")[0]

    @property
    def licence(self) -> str:
        return spdx_licence(self.description)

    @property
    def credit(self) -> str:
        """What the description says about authors: 'Original "x.wav" by "A". Edited by "B".'"""
        d = re.sub(r'^\s*"[^"]*"\.?\s*', "", self.description)
        return re.split(r"\s*Licen[cs]e:", d)[0].strip().rstrip(".") or "unknown"

    @property
    def originals(self) -> list[str]:
        """The source recordings it was edited from (entries made from one original share a split)."""
        return re.findall(r'[Oo]rig(?:i)?nal\s+"([^"]+)"', self.description)

    @property
    def local_name(self) -> str:
        stem = Path(self.filename).stem
        slug = re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_")[:48] or "untitled"
        return f"{stem}_{slug}.wav"


def read_cat(data: bytes) -> list[CatEntry]:
    """The entries of an OpenTTD sound container (.cat).

    Layout: a table of (uint32 offset, uint32 size) pairs, little-endian, the first offset also being the table's
    length; bit 31 of an offset marks the "new" format, whose entries are a length-prefixed, NUL-terminated
    description ('"Title". Original "x.wav" by "A". License: ...'), then `size` bytes of RIFF WAV, then a trailer
    (a zero byte and a length-prefixed name of the source file, e.g. src/wav/osfx_36.wav).
    """
    if len(data) < 8:
        raise SourceError("the .cat is too short for its offset table")
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF
    if first % 8 or first < 8 or first > len(data):
        raise SourceError(f"the .cat's offset table is malformed (first offset {first})")
    n = first // 8
    table = [struct.unpack_from("<II", data, 8 * i) for i in range(n)]
    entries = []
    for i, (raw_off, size) in enumerate(table):
        off = raw_off & 0x7FFFFFFF
        if off >= len(data):
            raise SourceError(f".cat entry {i}: offset {off} is past the end")
        nlen = data[off]
        desc = data[off + 1 : off + 1 + nlen].split(b"\0")[0].decode("latin-1").strip()
        start = off + 1 + nlen
        end = start + size
        if end > len(data) or data[start : start + 4] != b"RIFF":
            raise SourceError(f".cat entry {i} ({desc[:40]!r}): no RIFF data at {start}")
        nxt = (table[i + 1][0] & 0x7FFFFFFF) if i + 1 < n else len(data)
        m = re.search(rb"([\w./-]+\.wav)", data[end : max(end, nxt)])
        filename = Path(m.group(1).decode("latin-1")).name if m else f"entry_{i:02d}.wav"
        entries.append(CatEntry(i, filename, desc, data[start:end]))
    return entries


def _read_exact(fh: IO[bytes], n: int) -> bytes:
    buf = fh.read(n)
    if len(buf) != n:
        raise SourceError("unexpected end of the archive stream (truncated .deb?)")
    return buf


def iter_zip_stream(fh: IO[bytes], want) -> Iterator[tuple[str, bytes]]:
    """(name, data) of the members of a zip read sequentially from a stream, for names `want(name)` accepts.

    Reads local file headers in order (no central directory, no seeking): works for archives that record sizes in
    their local headers (0 A.D.'s public.zip, anything Python's zipfile writes to a file); stored and deflated
    members; CRC-checked. Members that are not wanted are skipped without decompression.
    """
    while True:
        sig = fh.read(4)
        if len(sig) < 4 or sig != b"PK\x03\x04":
            return  # central directory (PK\x01\x02) or end of stream
        (_ver, flags, method, _t, _d, crc, csize, usize, nlen, xlen) = struct.unpack("<HHHHHIIIHH", _read_exact(fh, 26))
        name = _read_exact(fh, nlen).decode("utf-8" if flags & 0x800 else "cp437")
        extra = _read_exact(fh, xlen)
        if flags & 0x08:
            raise SourceError(f"zip member {name} has a data descriptor: this archive cannot be streamed")
        if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:  # zip64: sizes in the extra field
            i = 0
            while i + 4 <= len(extra):
                tag, size = struct.unpack("<HH", extra[i : i + 4])
                if tag == 1:
                    vals = struct.unpack("<" + "Q" * (size // 8), extra[i + 4 : i + 4 + size])
                    k = 0
                    if usize == 0xFFFFFFFF:
                        usize, k = vals[k], k + 1
                    if csize == 0xFFFFFFFF:
                        csize = vals[k]
                i += 4 + size
        if not want(name) or name.endswith("/"):
            remaining = csize
            while remaining:
                got = fh.read(min(remaining, 1 << 20))
                if not got:
                    raise SourceError("unexpected end of the archive stream (truncated .deb?)")
                remaining -= len(got)
            continue
        raw = _read_exact(fh, csize)
        if method == 0:
            data = raw
        elif method == 8:
            data = zlib.decompress(raw, -15)
        else:
            raise SourceError(f"zip member {name}: compression method {method} is not supported")
        if zlib.crc32(data) != crc or len(data) != usize:
            raise SourceError(f"zip member {name} is corrupt (CRC or size mismatch)")
        yield name, data


def iter_container(container: Container, fh: IO[bytes], size: int, want) -> Iterator[tuple[str, bytes, dict]]:
    """(local path, data, per-file facts) of the members of a container in a package that `want(local path)`
    accepts; local paths are `<container path>/<member>`. A zip up to MAX_IN_MEMORY_CONTAINER is read whole and
    opened with zipfile (central directory, CRC-checked), a bigger one streamed; a .cat gives its entries as
    `osfx_NN_<title>.wav` with their licence, credit and originals."""
    import io
    import zipfile

    prefix = container.path + "/"
    if container.format == "zip":
        if size > MAX_IN_MEMORY_CONTAINER:
            for name, data in iter_zip_stream(fh, lambda n: want(prefix + n)):
                yield prefix + name, data, {}
            return
        try:
            with zipfile.ZipFile(io.BytesIO(fh.read())) as z:
                for info in z.infolist():
                    if not info.is_dir() and want(prefix + info.filename):
                        yield prefix + info.filename, z.read(info), {}
        except (zipfile.BadZipFile, zlib.error) as err:
            raise SourceError(f"{container.path} is not a readable zip: {err}") from err
    elif container.format == "cat":
        for e in read_cat(fh.read()):
            rel = prefix + e.local_name
            if want(rel):
                facts = {"title": e.title, "licence": e.licence, "copyright": e.credit,
                         "description": e.description}
                if e.originals:
                    facts["group"] = "original:" + e.originals[0]
                yield rel, e.data, facts
    else:
        raise SourceError(f"{container.path}: unknown container format {container.format!r}")
