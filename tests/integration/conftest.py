"""Fixtures of the lab tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

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
