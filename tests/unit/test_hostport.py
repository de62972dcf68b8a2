"""host:port: the schema's format and the clients that split a target agree on every value."""

from __future__ import annotations

import pytest

from clp.config.validation import is_host_port
from clp.net.hostport import split_host_port


@pytest.mark.parametrize(("value", "expected"), [
    ("198.18.0.254:29005", ("198.18.0.254", 29005)), ("[::1]:80", ("::1", 80)),
    ("witness-1.example:8080", ("witness-1.example", 8080))])
def test_valid_targets_split_and_pass_the_schema(value: str, expected: tuple[str, int]) -> None:
    assert split_host_port(value) == expected and is_host_port(value)


@pytest.mark.parametrize(("value", "why"), [
    ("[1.2.3.4]:80", "not an IPv6 address"), ("::1:80", "in brackets"), ("x:0", "not host:port"),
    ("x", "not host:port"), (":80", "not host:port"), ("a_b:80", "not a host name"),
    ("[zz]:1", "not an IPv6 address")])
def test_invalid_targets_are_refused_by_both_with_the_reason(value: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        split_host_port(value)
    assert not is_host_port(value)
