"""Fixtures of the lab tests."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clp.lab import Lab
from tests.integration.labutil import SLEEPER, leftovers


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Two lab servers running a sleeper instead of the services; removed after, and nothing of
    them may be left."""
    name = "t" + secrets.token_hex(2)
    try:
        yield Lab.up(name=name, n=2, services=SLEEPER)
    finally:
        Lab.cleanup_all(name)
        assert leftovers(name) == []


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clp's wheel and its dependencies', built once (pip's configured index, for them and the
    build requirements), for the tests that ``make install`` with ``WHEELS=``."""
    out = tmp_path_factory.mktemp("wheels")
    r = subprocess.run([sys.executable, "-m", "tools.install", "wheels", "--out", str(out)],
                       cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    assert list(out.glob("clp-*.whl")), list(out.iterdir())
    return out
