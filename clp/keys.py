"""The per-cluster authentication key: 32 random bytes, hex, in a root-only file.

Every server of a cluster holds the same key; every packet and message between servers carries an
HMAC made with it. A key readable by group or others is refused, not used: a leaked key lets anyone
on the network forge heartbeats.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

KEY_BYTES = 32


class KeyFileError(Exception):
    pass


def load_key(path: Path) -> bytes:
    try:
        st = path.stat()
        text = path.read_text().strip()
    except FileNotFoundError:
        raise KeyFileError(f"cluster key {path} does not exist (create it with 'clpcfchk "
                           f"--new-key {path.parent}' and copy it to every server)") from None
    except OSError as e:
        raise KeyFileError(f"cannot read cluster key {path}: {e.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"cluster key {path} is accessible by group or others "
                           f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"cluster key {path} is not hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"cluster key {path} has {len(key)} bytes, expected {KEY_BYTES}")
    return key


def write_new_key(path: Path) -> bytes:
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    os.chmod(path, 0o600)
    return key
