"""``clpsupervise``: keeps this server's clp services running where there is no systemd or SMF.

Each lab server's init runs it, and so can a container or a minimal host. It starts a fixed list of
services, restarts one that dies (non-zero exit or signal) with exponential backoff so a service
that crashes at start-up cannot spin the CPU, leaves one that exits 0 stopped (``clpcl -t`` stops
``clusterpro`` that way), and logs every start, exit and delayed restart, because "why did this
restart at 03:12" is the first question after an incident.

Control socket ``run/clpsupervise.sock`` (root-only): one JSON line per connection,
``{"op": "start"|"stop"|"restart"|"status", "service": name}``, answered with one JSON line
``{"ok": bool, "message": str, "services": {name: {"state", "pid", "restarts", "since"}}}``.
A ``stop`` is answered once the service has exited, so callers need not poll.

The loop owns every state change; signal handlers only set flags and wake it through a pipe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

import click

from clp.paths import InstallRoot
from clp.platform.supervision import RUNNING, Service, ServiceTable

DEFAULT_SERVICES = ("clusterpro_evt", "clusterpro_trn", "clusterpro", "clusterpro_alertsync")
log = logging.getLogger("clp.supervise")


def parse_specs(specs: list[str]) -> list[Service]:
    """``NAME`` (the installed program of that name) or ``NAME=COMMAND ARGS`` (tests, odd hosts)."""
    services = []
    for spec in specs:
        name, _, command = spec.partition("=")
        name = name.strip()
        if not name:
            raise click.BadParameter(f"empty service name in {spec!r}")
        services.append(Service(name, shlex.split(command) if command.strip() else None))
    return services


def read_services_file(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


class Supervisor:
    """The event loop around :class:`ServiceTable`: signals, the control socket, timers."""

    def __init__(self, root: InstallRoot, table: ServiceTable) -> None:
        self.root = root
        self.table = table
        self.sel = selectors.DefaultSelector()
        self.terminate = False
        self.waiting: list[tuple[socket.socket, str]] = []  # stop replies owed, by service
        self.buffers: dict[socket.socket, bytes] = {}
        self.listener: socket.socket | None = None

    # signals: flags only
    def _on_term(self, signum: int, frame: object) -> None:
        self.terminate = True

    def _install_signals(self) -> None:
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        signal.set_wakeup_fd(w)
        self.sel.register(r, selectors.EVENT_READ, "wakeup")
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGCHLD, lambda s, f: None)  # only to wake the loop
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _listen(self) -> None:
        path = self.root.supervisor_socket
        if path.exists() or path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # stale, left by a supervisor that was killed
            else:
                raise SystemExit(f"clpsupervise: another supervisor is listening on {path}")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        sock.setblocking(False)
        self.sel.register(sock, selectors.EVENT_READ, "listen")
        self.listener = sock

    def run(self) -> int:
        self._install_signals()
        self._listen()
        log.info("clpsupervise started (pid %d): %s", os.getpid(),
                 ", ".join(s.name for s in self.table.services) or "no services")
        self.table.start_all(time.monotonic())
        try:
            while True:
                now = time.monotonic()
                if self.terminate and not self.table.shutting_down:
                    log.info("SIGTERM received: stopping every service in reverse order")
                    self.table.shutting_down = True
                self.table.step(now)
                self._answer_waiters()
                if self.table.shutting_down and self.table.all_down():
                    log.info("clpsupervise exiting: every service is stopped")
                    return 0
                self._poll(self.table.next_timeout(now))
        finally:
            self._close()

    def _poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            if key.data == "wakeup":
                try:
                    while os.read(key.fd, 512):
                        pass
                except BlockingIOError:
                    pass
            elif key.data == "listen":
                self._accept()
            else:
                self._read(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self.buffers[conn] = b""
        self.sel.register(conn, selectors.EVENT_READ, "conn")

    def _read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        self.buffers[conn] += data
        if b"\n" in self.buffers[conn] or len(self.buffers[conn]) > 65536:
            line = self.buffers[conn].split(b"\n", 1)[0]
            self.sel.unregister(conn)
            self._handle(conn, line)

    def _handle(self, conn: socket.socket, line: bytes) -> None:
        try:
            req = json.loads(line)
            op, name = req.get("op"), req.get("service")
        except (ValueError, AttributeError):
            self._reply(conn, False, "request is not a JSON object")
            return
        ok, message, wait = self.table.request(op, name, time.monotonic())
        if wait:
            self.waiting.append((conn, name))
        else:
            self._reply(conn, ok, message)

    def _answer_waiters(self) -> None:
        for conn, name in list(self.waiting):
            svc = self.table.get(name)
            if svc is None or not svc.stopping:
                self.waiting.remove((conn, name))
                ok = svc is not None and (svc.state != RUNNING or svc.want)
                self._reply(conn, ok, f"{name} is {svc.state if svc else 'gone'}")

    def _reply(self, conn: socket.socket, ok: bool, message: str) -> None:
        doc = {"ok": ok, "message": message, "services": self.table.status()}
        try:
            conn.setblocking(True)
            conn.settimeout(2)
            conn.sendall(json.dumps(doc).encode() + b"\n")
        except OSError:
            pass
        self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        self.buffers.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn)
        conn.close()

    def _close(self) -> None:
        for conn, _ in self.waiting:
            conn.close()
        if self.listener is not None:
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.root.supervisor_socket.unlink()


def _setup_logging(root: InstallRoot) -> None:
    fmt = logging.Formatter("%(asctime)s clpsupervise %(levelname)s %(message)s")
    logger = logging.getLogger("clp.supervise")
    logger.setLevel(logging.INFO)
    for handler in (logging.FileHandler(root.log_dir / "clpsupervise.log"),
                    logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        logger.addHandler(handler)


@click.command()
@click.option("--root", type=click.Path(file_okay=False), help="Install root (default: $CLP_ROOT).")
@click.argument("specs", nargs=-1)
def main(root: str | None, specs: tuple[str, ...]) -> None:
    """Run SPECS (NAME or NAME=COMMAND), else those of etc/services, else the default three."""
    install = InstallRoot.from_env() if root is None else InstallRoot(Path(root))
    install.ensure_dirs()
    _setup_logging(install)
    names = list(specs) if specs else read_services_file(install.config_dir / "services")
    services = parse_specs(list(DEFAULT_SERVICES) if names is None else names)
    env = dict(os.environ, CLP_ROOT=str(install.root))
    table = ServiceTable(services, env=env, log_dir=install.log_dir)
    sys.exit(Supervisor(install, table).run())


if __name__ == "__main__":
    main()
