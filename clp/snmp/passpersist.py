"""``clpsnmpagent``: serves CLP-CLUSTER-MIB to net-snmp's snmpd over its ``pass_persist``
protocol (snmpd.conf: ``pass_persist .1.3.6.1.4.1.119.2.3.207 .../clpsnmpagent``).

Why pass_persist rather than an AgentX subagent: snmpd starts (and restarts) the agent on the
first request, so there is no daemon of ours to supervise; SNMP itself (v1/v2c/v3, USM
authentication and privacy, the VACM views the seed tells users to extend) stays entirely in
snmpd; and the protocol is a few text lines on a pipe, so no SNMP library is needed. AgentX
would mean implementing or importing its binary protocol and a reconnecting client for a tree
of a few hundred objects. The cost, one pipe round trip per object, is measured in
docs/snmp.md.

The protocol, one request at a time on stdin, one answer on stdout:

    PING                       -> PONG
    get / getnext, OID         -> OID, type, value   or NONE
    set, OID, "type value"     -> not-writable       (the MIB is read-only)

A line that is none of these is answered NONE and nothing more is read for it, so a bad line
never shifts the requests after it; an unreadable OID is answered NONE. Lines are read with a
bound (the rest of an overlong line is skipped), and the tree is rebuilt from shared memory at
most once a second (``TTL``): a walk sees one or two consecutive snapshots and costs one read
per second whatever its length. When the cluster service is not running the cluster scalars say
so (stopped or unknown, with clpstat's reason) and the tables are empty.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from clp.snmp import tree as mib
from clp.snmp.tree import Oid, Tree

TTL = 1.0
MAX_LINE = 2048  # octets: an OID of 128 sub-identifiers of 10 digits (1,408) fits
OVERLONG = b"\0overlong"
MAX_SUBIDS = 128  # RFC 2578: an OID has at most 128 sub-identifiers
OID_RE = re.compile(rb"\.?(\d{1,10})(\.\d{1,10}){0,127}")
NONE = b"NONE\n"


def parse_oid(line: bytes) -> Oid | None:
    """``.1.3.6...`` (the leading dot optional) as a tuple; None for anything else."""
    line = line.strip()
    if not OID_RE.fullmatch(line):
        return None
    oid = tuple(int(x) for x in line.lstrip(b".").split(b"."))
    if len(oid) > MAX_SUBIDS or any(x > mib.MAX_GAUGE for x in oid):
        return None
    return oid


def format_answer(oid: Oid, value: mib.Value) -> bytes:
    kind, data = value
    shown = data.encode("utf-8") if isinstance(data, str) else str(int(data)).encode()
    return b"." + ".".join(map(str, oid)).encode() + b"\n" + kind.encode() + b"\n" + shown + b"\n"


class Agent:
    """Answers requests from a tree rebuilt by ``load`` at most every ``ttl`` seconds."""

    def __init__(self, load: Callable[[], Tree], ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._tree: Tree | None = None
        self._built = 0.0

    def tree(self) -> Tree:
        now = self._clock()
        if self._tree is None or now - self._built >= self._ttl:
            self._tree, self._built = self._load(), now
        return self._tree

    def get(self, oid_line: bytes) -> bytes:
        oid = parse_oid(oid_line)
        value = self.tree().get(oid) if oid is not None else None
        return NONE if value is None else format_answer(oid, value)

    def getnext(self, oid_line: bytes) -> bytes:
        oid = parse_oid(oid_line)
        found = self.tree().next(oid) if oid is not None else None
        return NONE if found is None else format_answer(*found)


def read_line(stream: BinaryIO) -> bytes | None:
    """One line without its newline; OVERLONG for a line of more than MAX_LINE octets (the
    rest of it skipped in bounded reads), which no request accepts; None at the end of input."""
    line = stream.readline(MAX_LINE)
    if not line:
        return None
    if line.endswith(b"\n"):
        return line[:-1]
    rest = line
    while rest and not rest.endswith(b"\n"):
        rest = stream.readline(MAX_LINE)
    return OVERLONG


def answer(agent: Agent, command: bytes, stream: BinaryIO) -> bytes | None:
    """The answer to one request whose first line is ``command``; None when the input ended
    inside the request."""
    word = command.strip().lower()
    if word == b"ping":
        return b"PONG\n"
    if word in (b"get", b"getnext"):
        oid = read_line(stream)
        if oid is None:
            return None
        return agent.get(oid) if word == b"get" else agent.getnext(oid)
    if word == b"set":
        if read_line(stream) is None or read_line(stream) is None:
            return None
        return b"not-writable\n"
    return NONE


def serve(agent: Agent, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer until snmpd closes the pipe."""
    while True:
        command = read_line(stdin)
        if command is None:
            return
        out = answer(agent, command, stdin)
        if out is None:
            return
        stdout.write(out)
        stdout.flush()


def loader(root: Path) -> Callable[[], Tree]:
    """Reads the status as clpstat does; an outage becomes the outage tree, never an error."""
    from clp.cli.clpstat import load_local
    from clp.paths import InstallRoot
    from clp.state.layout import StateError, StateNotRunning, StateStale

    install = InstallRoot(root)

    def load() -> Tree:
        try:
            return mib.from_status(load_local(install))
        except StateNotRunning:
            return mib.from_outage("Stopped", "The cluster service is not running on this "
                                   "server.", _cluster_name(install.config_file))
        except StateStale as e:
            return mib.from_outage("Unknown", f"The cluster service on this server has stopped "
                                   f"abnormally (its status is left by dead process "
                                   f"{e.writer_pid}).", _cluster_name(install.config_file))
        except StateError as e:
            return mib.from_outage("Unknown", f"The status in shared memory cannot be read: {e}",
                                   _cluster_name(install.config_file))
        except (KeyError, TypeError, ValueError) as e:  # a snapshot this version cannot read
            return mib.from_outage("Unknown", f"The status document cannot be read: {e!r}")

    return load


def _cluster_name(config: Path) -> str:
    """The cluster's name from the configuration, "" when it cannot be read."""
    import yaml

    try:
        return str(yaml.safe_load(config.read_text())["cluster"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return ""


def main(argv: list[str] | None = None) -> None:
    """snmpd runs this; it answers on stdin/stdout until snmpd closes the pipe."""
    from clp.paths import InstallRoot

    parser = argparse.ArgumentParser(prog="clpsnmpagent", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None,
                        help="the install root (default: $CLP_ROOT or /opt/nec/clusterpro)")
    args = parser.parse_args(argv)
    root = args.root or InstallRoot.from_env().root
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):  # snmpd went away
        serve(Agent(loader(root)), sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
