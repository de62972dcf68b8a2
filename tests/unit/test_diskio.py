"""The compiled disk heartbeat helper through its one importer, on a regular file (no root):
it is built and importable, a cycle round-trips, and -errno becomes OSError with that errno."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from clp.heartbeat.diskio import BLOCK, DiskDevice


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "hb.img"
    with open(path, "wb") as f:
        f.truncate(8 * BLOCK)
    try:
        DiskDevice.open(str(path)).close()
    except OSError as e:
        if e.errno == errno.EINVAL:  # a filesystem without O_DIRECT
            pytest.skip(f"{tmp_path} does not support O_DIRECT")
        raise
    return str(path)


def test_cycle_round_trip_on_a_file(image: str) -> None:
    with DiskDevice.open(image) as dev:
        assert (dev.size, dev.block_size) == (8 * BLOCK, BLOCK)
        dev.write(0, b"header")
        data = dev.cycle(b"slot", 2, 0, 3)
        assert data[:6] == b"header" and data[2 * BLOCK:2 * BLOCK + 4] == b"slot"
        assert data[BLOCK:2 * BLOCK] == bytes(BLOCK)


def test_errno_becomes_oserror(image: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing: open"):
        DiskDevice.open(str(tmp_path / "nothing"))
    with DiskDevice.open(image) as dev:
        with pytest.raises(OSError) as e:
            dev.cycle(b"x", 1, 7, 2)  # the read runs past the end: short
        assert e.value.errno == errno.EIO and image in str(e.value)
        with pytest.raises(OSError) as e:
            dev.write(1, bytes(BLOCK + 1))
        assert e.value.errno == errno.EINVAL
