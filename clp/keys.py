"""The per-cluster authentication key: 32 random bytes, hex, in a root-only file.

Every server of a cluster holds the same key; every packet and message between servers carries an
HMAC made with it. A key readable by group or others is refused, not used: a leaked key lets anyone
on the network forge heartbeats.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

KEY_BYTES = 32
REXEC_PREFIX = "rexec:"
ARBITER_PREFIX = "arbiter:"


class KeyFileError(Exception):
    pass


def _read_hex(path: Path, what: str, prefix: str = "") -> bytes:
    try:
        st = path.stat()
        text = path.read_text().strip()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise KeyFileError(f"cannot read {what} {path}: {e.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{what} {path} is accessible by group or others "
                           f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
    try:
        key = bytes.fromhex(text.removeprefix(prefix))
    except ValueError:
        raise KeyFileError(f"{what} {path} is not hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{what} {path} has {len(key)} bytes, expected {KEY_BYTES}")
    return key


def load_key(path: Path) -> bytes:
    if not path.exists():
        raise KeyFileError(f"cluster key {path} does not exist (create it with 'clpcfchk "
                           f"--new-key {path.parent}' and copy it to every server)")
    if _is_rexec_file(path):
        raise KeyFileError(f"{path} is a clprexec key, not the cluster key")
    if _has_prefix(path, ARBITER_PREFIX):
        raise KeyFileError(f"{path} is an arbiter key, not the cluster key")
    return _read_hex(path, "cluster key")


def rexec_key(cluster_key: bytes) -> bytes:
    """The key of ``clprexec`` requests, derived from the cluster key: a host outside the
    cluster holds this one only, which the servers accept for ``clprexec``'s operations and
    nothing else (not the cluster RPC, not stopping a service)."""
    return hmac.new(cluster_key, b"clp clprexec key v1", hashlib.sha256).digest()


def load_rexec_key(path: Path) -> bytes:
    """A clprexec key file (``rexec:<hex>``, made by ``clprexec --make-key``), or the cluster
    key itself (on a cluster server), from which the clprexec key is derived."""
    if path.exists() and _is_rexec_file(path):
        return _read_hex(path, "clprexec key", REXEC_PREFIX)
    return rexec_key(load_key(path))


def write_rexec_key(path: Path, cluster_key: bytes) -> None:
    _write_derived(path, REXEC_PREFIX, rexec_key(cluster_key))


def arbiter_key(cluster_key: bytes) -> bytes:
    """The key of witness arbitration (clp.witness.arbitration), derived from the cluster
    key: the witness holds this one only, which lets it grant and refuse claims of this
    cluster and nothing else (it cannot forge heartbeats or cluster requests)."""
    return hmac.new(cluster_key, b"clp arbiter key v1", hashlib.sha256).digest()


def write_arbiter_key(path: Path, cluster_key: bytes) -> None:
    _write_derived(path, ARBITER_PREFIX, arbiter_key(cluster_key))


def load_arbiter_key(path: Path) -> bytes:
    """An arbiter key file (``arbiter:<hex>``, made by ``clpcfchk --arbiter-key``)."""
    if not (path.exists() and _has_prefix(path, ARBITER_PREFIX)):
        raise KeyFileError(f"{path} is not an arbiter key (make one on a cluster server with "
                           f"'clpcfchk --arbiter-key FILE DIRECTORY')")
    return _read_hex(path, "arbiter key", ARBITER_PREFIX)


def _write_derived(path: Path, prefix: str, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(prefix + key.hex() + "\n")


def _is_rexec_file(path: Path) -> bool:
    return _has_prefix(path, REXEC_PREFIX)


def _has_prefix(path: Path, prefix: str) -> bool:
    try:
        with open(path) as f:
            return f.read(len(prefix)) == prefix
    except (OSError, UnicodeDecodeError):
        return False


def write_new_key(path: Path) -> bytes:
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    os.chmod(path, 0o600)
    return key
