"""Cluster membership from heartbeat observations: who is up, which heartbeat paths work.

Pure: no I/O and no clock. Every call takes ``now`` (monotonic seconds) and returns the
:class:`Decision` objects it made, each with a one-line reason that the service logs as is.

The rules, as seen from the local server ``me``:

- ``me`` is always Online. Its own row shows Normal on every path it is configured on (the product
  shows the local server's heartbeat rows as Normal), Not Used elsewhere.
- A path is *used* between ``me`` and ``S`` only if both are in the path's server set; otherwise it
  is Not Used for ``S`` and plays no part in ``S``'s state.
- Other servers start Unknown with Unknown paths. Each used path has a timer that runs from its
  last heartbeat, or from construction/resume if nothing came since then. A path is *dead* when
  strictly more than ``timeout`` has passed on that timer.
- The first heartbeat from ``S`` makes it Online (``server_up``) and that path Normal. Its other
  paths stay Unknown until they deliver (Normal, silently) or their timer runs out (Error,
  ``path_lost``).
- ``S`` goes Offline (one ``server_down``) only when every used path to it is dead, and never before
  ``timeout`` after construction/resume (so a server sharing no path with us goes Offline then).
  Its paths then go Error without separate ``path_lost`` decisions: the ``server_down`` reason
  covers them.
- An Offline server that sends again is Online (``server_up``); like at start, its other paths go
  back to Unknown with a fresh timer, so a server coming back does not raise a ``path_restored``
  for every path that simply had not delivered yet.
- An Error path that delivers while its server is Online is Normal again (``path_restored``).
- While suspended nothing is decided (``tick`` returns ``[]``, heartbeats are only recorded);
  ``resume`` restarts every timer from its ``now``, so a long suspend causes no false downs.
- The effective timeout is ``timeout * ratio`` (the product's ``clptoratio``), read at each tick.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any


class ServerState(enum.Enum):
    ONLINE = "Online"
    OFFLINE = "Offline"
    UNKNOWN = "Unknown"


class PathState(enum.Enum):
    NORMAL = "Normal"
    ERROR = "Error"
    UNKNOWN = "Unknown"
    NOT_USED = "Not Used"


# Legal edges; change_state() rejects anything else (a bug in this module, not an input error).
SERVER_EDGES: frozenset[tuple[ServerState, ServerState]] = frozenset({
    (ServerState.UNKNOWN, ServerState.ONLINE),    # first heartbeat
    (ServerState.UNKNOWN, ServerState.OFFLINE),   # nothing heard within timeout of start
    (ServerState.ONLINE, ServerState.OFFLINE),    # every used path dead
    (ServerState.OFFLINE, ServerState.ONLINE),    # heard again
})
PATH_EDGES: frozenset[tuple[PathState, PathState]] = frozenset({
    (PathState.UNKNOWN, PathState.NORMAL),        # first heartbeat on the path
    (PathState.UNKNOWN, PathState.ERROR),         # nothing within timeout of start
    (PathState.NORMAL, PathState.ERROR),          # timed out
    (PathState.ERROR, PathState.NORMAL),          # delivers again
    (PathState.ERROR, PathState.UNKNOWN),         # its server came back on another path
})

DECISION_KINDS = ("server_up", "server_down", "path_lost", "path_restored")


@dataclass(frozen=True)
class Decision:
    kind: str  # one of DECISION_KINDS
    server: str
    path: str | None
    reason: str
    alert: bool


@dataclass
class _Path:
    state: PathState = PathState.UNKNOWN
    last_rx: float | None = None  # the true last heartbeat, shown to users
    ref: float = 0.0  # what the timer runs from: last heartbeat or construction/resume
    since: float = 0.0


@dataclass
class _Server:
    state: ServerState
    since: float
    paths: dict[str, _Path]  # used paths only


def _secs(x: float) -> str:
    return f"{x:.2f} s"


class Membership:
    def __init__(self, me: str, servers: list[str], paths: dict[str, set[str]], timeout: float,
                 now: float) -> None:
        if len(set(servers)) != len(servers):
            raise ValueError(f"duplicate server names in {servers!r}")
        if me not in servers:
            raise ValueError(f"local server {me!r} is not one of the servers {servers!r}")
        for name, members in paths.items():
            stray = sorted(set(members) - set(servers))
            if stray:
                raise ValueError(f"heartbeat path {name!r} names unknown servers {stray!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"heartbeat timeout must be a positive number, not {timeout!r}")
        self.me = me
        self.servers = list(servers)
        self.path_names = list(paths)
        self._members = {name: frozenset(m) for name, m in paths.items()}
        self._base_timeout = float(timeout)
        self._ratio = 1.0
        self._suspended = False
        self._epoch = now  # construction or last resume: no timer runs from before this
        self._own_rx: dict[str, float] = {}
        self._servers: dict[str, _Server] = {}
        for s in self.servers:
            state = ServerState.ONLINE if s == me else ServerState.UNKNOWN
            used = {} if s == me else {p: _Path(ref=now, since=now)
                                       for p in self.path_names if self._used(s, p)}
            self._servers[s] = _Server(state, now, used)

    # --- queries --------------------------------------------------------------------------

    @property
    def timeout(self) -> float:
        """The effective heartbeat timeout: the configured one times the timeout ratio."""
        return self._base_timeout * self._ratio

    @property
    def ratio(self) -> float:
        return self._ratio

    @property
    def suspended(self) -> bool:
        return self._suspended

    def server_state(self, server: str) -> ServerState:
        return self._server(server).state

    def path_state(self, server: str, path: str) -> PathState:
        srv = self._server(server)
        self._check_path(path)
        if server == self.me:
            return PathState.NORMAL if server in self._members[path] else PathState.NOT_USED
        return srv.paths[path].state if path in srv.paths else PathState.NOT_USED

    def last_rx(self, server: str, path: str) -> float | None:
        srv = self._server(server)
        self._check_path(path)
        if server == self.me:
            return self._own_rx.get(path)
        return srv.paths[path].last_rx if path in srv.paths else None

    @property
    def base_timeout(self) -> float:
        """The configured heartbeat timeout (the effective one is never shorter: ratio >= 1)."""
        return self._base_timeout

    def timer_from(self, server: str) -> float:
        """What ``server``'s timeout counts from: when its newest heartbeat was first received
        on any path, or this server's start or resume if later; it is declared down no sooner
        than a timeout after it."""
        srv = self._servers.get(server)
        return max((p.ref for p in srv.paths.values()), default=float("-inf")) if srv \
            else float("-inf")

    def last_rxs(self, server: str) -> list[float]:
        """When ``server`` was last heard on each of its paths that ever delivered."""
        srv = self._servers.get(server)
        return [] if srv is None else [p.last_rx for p in srv.paths.values()
                                       if p.last_rx is not None]

    def silence(self, now: float) -> dict[str, float]:
        """For every other server heard at least once: seconds since its newest heartbeat on
        any path (none while suspended: nobody is timed out then)."""
        if self._suspended:
            return {}
        return {name: now - max(hb.ref for hb in srv.paths.values())
                for name, srv in self._servers.items()
                if name != self.me and any(hb.last_rx is not None for hb in srv.paths.values())}

    def snapshot(self, wall_offset: float | None = None) -> dict[str, Any]:
        """A JSON-ready view. With ``wall_offset`` (``time.time() - time.monotonic()``), each
        server also gets ``since_wall``, its ``since`` on the wall clock."""
        servers: dict[str, Any] = {}
        for name in self.servers:
            srv = self._servers[name]
            entry: dict[str, Any] = {
                "state": srv.state.value, "since": srv.since,
                "paths": {p: {"state": self.path_state(name, p).value,
                              "last_rx": self.last_rx(name, p)} for p in self.path_names},
            }
            if wall_offset is not None:
                entry["since_wall"] = srv.since + wall_offset
            servers[name] = entry
        return {"servers": servers, "timeout": self.timeout, "ratio": self._ratio,
                "suspended": self._suspended}

    # --- inputs ---------------------------------------------------------------------------

    def set_timeout_ratio(self, ratio: float) -> None:
        if not (math.isfinite(ratio) and ratio >= 1):
            raise ValueError(f"timeout ratio must be a finite number >= 1, not {ratio!r}")
        self._ratio = float(ratio)

    def suspend(self, now: float) -> None:
        """Stop deciding (idempotent)."""
        self._suspended = True

    def resume(self, now: float) -> None:
        """Decide again, every timer restarted from ``now`` (no-op when not suspended)."""
        if not self._suspended:
            return
        self._suspended = False
        self._epoch = now
        for srv in self._servers.values():
            for p in srv.paths.values():
                p.ref = now

    def heartbeat(self, now: float, server: str, path: str,
                  sent: float | None = None) -> list[Decision]:
        """A heartbeat from ``server`` on ``path`` received at ``now``. ``sent``: when the same
        heartbeat was first received on any path, if earlier (a disk path reads a record up to
        an interval after it was written; its LAN copy came when it was sent): the path is
        timed from then, so a slower path never holds a dead server's verdict back. A copy
        older than the timeout does not bring a server back."""
        srv = self._server(server)
        self._check_path(path)
        if server == self.me:
            if server not in self._members[path]:
                raise ValueError(f"heartbeat path {path!r} is not configured for {server!r}")
            self._own_rx[path] = now
            return []
        if path not in srv.paths:
            raise ValueError(f"heartbeat path {path!r} is not used between {self.me!r} and "
                             f"{server!r}")
        hb = srv.paths[path]
        hb.last_rx = now
        if self._suspended:
            return []
        at = now if sent is None else min(now, sent)
        if srv.state != ServerState.ONLINE and now - at > self.timeout:
            return []
        hb.ref = max(hb.ref, at)
        if srv.state != ServerState.ONLINE:
            return [self._server_up(now, server, srv, path)]
        if hb.state == PathState.ERROR:
            reason = (f"heartbeat path {path} to {server} restored after "
                      f"{_secs(now - hb.since)} in error")
            self._change_path(hb, PathState.NORMAL, now)
            return [Decision("path_restored", server, path, reason, True)]
        if hb.state == PathState.UNKNOWN:
            self._change_path(hb, PathState.NORMAL, now)
        return []

    def alive(self, now: float, server: str, path: str, sent: float | None = None) -> bool:
        """What :meth:`heartbeat` does with a heartbeat from an Online server on a Normal path
        (it only moves the path's timer), done only when that is the case: False (nothing done)
        otherwise, and the caller then calls :meth:`heartbeat`. The receive path's fast lane."""
        srv = self._servers.get(server)
        if srv is None or srv.state is not ServerState.ONLINE or self._suspended:
            return False
        hb = srv.paths.get(path)
        if hb is None or hb.state is not PathState.NORMAL:
            return False
        hb.last_rx = now
        at = now if sent is None or sent > now else sent
        if at > hb.ref:
            hb.ref = at
        return True

    def tick(self, now: float) -> list[Decision]:
        if self._suspended:
            return []
        timeout = self.timeout
        out: list[Decision] = []
        for name in self.servers:
            srv = self._servers[name]
            if name == self.me:
                continue
            dead = [p for p, hb in srv.paths.items() if now - hb.ref > timeout]
            if len(dead) == len(srv.paths) and now - self._epoch > timeout:
                if srv.state != ServerState.OFFLINE:
                    out.append(self._server_down(now, name, srv))
                continue
            for p in dead:
                hb = srv.paths[p]
                if hb.state in (PathState.NORMAL, PathState.UNKNOWN):
                    out.append(self._path_lost(now, name, srv, p))
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`tick` could decide something (a path or a server
        timing out), or None when nothing is pending. Lets the caller wake exactly then."""
        if self._suspended:
            return None
        timeout = self.timeout
        times = []
        for name in self.servers:
            srv = self._servers[name]
            if name == self.me or srv.state == ServerState.OFFLINE:
                continue
            refs = [hb.ref for hb in srv.paths.values()]
            times.append(max([*refs, self._epoch]) + timeout)  # every path silent: down
            times += [hb.ref + timeout for hb in srv.paths.values()
                      if hb.state in (PathState.NORMAL, PathState.UNKNOWN)]
        return min(times, default=None)

    # --- transitions ----------------------------------------------------------------------

    def _server_up(self, now: float, name: str, srv: _Server, path: str) -> Decision:
        back = srv.state == ServerState.OFFLINE
        if back:
            reason = (f"{name} is up again: heartbeat on {path} after {_secs(now - srv.since)} "
                      f"offline")
        else:
            reason = f"{name} is up: first heartbeat on {path}"
        self._change_server(srv, ServerState.ONLINE, now)
        for p, hb in srv.paths.items():
            if p == path:
                if hb.state != PathState.NORMAL:
                    self._change_path(hb, PathState.NORMAL, now)
            elif back:  # like at start: each other path gets a fresh timeout to deliver
                if hb.state == PathState.ERROR:
                    self._change_path(hb, PathState.UNKNOWN, now)
                hb.ref = max(hb.ref, now)
        return Decision("server_up", name, None, reason, True)

    def _server_down(self, now: float, name: str, srv: _Server) -> Decision:
        heard = [hb.last_rx for hb in srv.paths.values() if hb.last_rx is not None]
        quiet = now - max([h.ref for h in srv.paths.values()], default=self._epoch)
        where = ", ".join(srv.paths)
        if not srv.paths:
            reason = (f"{name} is down: it shares no heartbeat path with {self.me}, nothing "
                      f"heard in {_secs(quiet)} (timeout {self.timeout:g} s)")
        elif srv.state == ServerState.UNKNOWN or not heard:
            reason = (f"{name} is down: never heard on {where} in {_secs(quiet)} "
                      f"(timeout {self.timeout:g} s)")
        else:
            reason = (f"{name} is down: no heartbeat on any path ({where}) for {_secs(quiet)} "
                      f"(timeout {self.timeout:g} s)")
        self._change_server(srv, ServerState.OFFLINE, now)
        for hb in srv.paths.values():
            if hb.state != PathState.ERROR:
                self._change_path(hb, PathState.ERROR, now)
        return Decision("server_down", name, None, reason, True)

    def _path_lost(self, now: float, name: str, srv: _Server, path: str) -> Decision:
        hb = srv.paths[path]
        alive = [p for p, h in srv.paths.items() if now - h.ref <= self.timeout]
        what = "nothing received" if hb.last_rx is None or hb.last_rx < self._epoch \
            else "no heartbeat"
        reason = (f"heartbeat path {path} to {name} lost: {what} for {_secs(now - hb.ref)} "
                  f"(timeout {self.timeout:g} s); {name} still reachable on {', '.join(alive)}")
        self._change_path(hb, PathState.ERROR, now)
        return Decision("path_lost", name, path, reason, True)

    @staticmethod
    def _change_server(srv: _Server, new: ServerState, now: float) -> None:
        if (srv.state, new) not in SERVER_EDGES:
            raise RuntimeError(f"illegal server transition {srv.state.value} -> {new.value}")
        srv.state = new
        srv.since = now

    @staticmethod
    def _change_path(hb: _Path, new: PathState, now: float) -> None:
        if (hb.state, new) not in PATH_EDGES:
            raise RuntimeError(f"illegal path transition {hb.state.value} -> {new.value}")
        hb.state = new
        hb.since = now

    # --- helpers --------------------------------------------------------------------------

    def _used(self, server: str, path: str) -> bool:
        members = self._members[path]
        return self.me in members and server in members

    def _server(self, server: str) -> _Server:
        try:
            return self._servers[server]
        except KeyError:
            raise ValueError(f"unknown server {server!r} (servers: "
                             f"{', '.join(self.servers)})") from None

    def _check_path(self, path: str) -> None:
        if path not in self._members:
            raise ValueError(f"unknown heartbeat path {path!r} (paths: "
                             f"{', '.join(self.path_names) or 'none'})")
