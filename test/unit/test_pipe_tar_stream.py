"""pipe/sources/tar_stream.py against tarfile's own writer: the same members, names and bytes, for
the ustar, pax and GNU formats, whatever the chunking; cut streams and non-tars are refused."""
from __future__ import annotations

import io
import os
import random
import tarfile

import pytest

from pipe.sources.tar_stream import TarStreamError, members, parse_pax

ENTRIES = [
    ("a" * 120 + "/layer.tar", os.urandom(70_000)),  # longer than ustar's 100: pax path / GNU longname
    ("short.json", b'{"x": 1}'),
    ("empty", b""),
    ("naïve-ünïcode/file", os.urandom(513)),
]


def make_tar(fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data in ENTRIES:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "../" + "b" * 110
        tar.addfile(link)
    return out.getvalue()


def chunked(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    parts, i = [], 0
    while i < len(data):
        n = rng.choice([1, 7, 511, 512, 513, 4096, 65536])
        parts.append(data[i:i + n])
        i += n
    return parts


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("seed", [1, 2])
def test_same_members_as_tarfile_wrote(fmt, seed):
    data = make_tar(fmt)
    got = []
    for i, (info, member) in enumerate(members(iter(chunked(data, seed)))):
        # Read some members whole, some in part, one not at all: the stream must stay in step.
        body = b"".join(bytes(p) for p in iter(lambda m=member: m.read(1000), b"")) if i != 1 else b""
        got.append((info.name, info.linkname, body if i != 1 else None))
    assert [name for name, _, _ in got] == [name for name, _ in ENTRIES] + ["link"]
    assert got[0][2] == ENTRIES[0][1] and got[3][2] == ENTRIES[3][1] and got[2][2] == b""
    assert got[4][1] == "../" + "b" * 110


def test_read_all_stops_at_its_limit():
    data = make_tar(tarfile.PAX_FORMAT)
    info, member = next(members(iter([data])))
    assert len(member.read_all(100)) == 101 and member.left == len(ENTRIES[0][1]) - 101


def test_cut_streams_and_non_tars_are_refused():
    data = make_tar(tarfile.PAX_FORMAT)
    with pytest.raises(TarStreamError, match="ends inside"):
        for _, member in members(iter([data[:40_000]])):
            while member.read(4096):
                pass
    with pytest.raises(TarStreamError, match="not a tar header"):
        list(members(iter([os.urandom(2048)])))
    assert list(members(iter([]))) == []


def test_pax_records():
    assert parse_pax(b"15 path=abcdef\n12 size=42\n") == {"path": "abcdef", "size": "42"}
    assert parse_pax(b"garbage") == {}
