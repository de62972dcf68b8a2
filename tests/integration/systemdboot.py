"""A real systemd as PID 1 of its own namespaces, booted in a :class:`FreshRoot` the way
systemd-nspawn boots a container, for machines whose own init is not systemd.

``/lib/systemd/systemd`` runs as PID 1 of fresh pid, mount, uts, ipc, net and cgroup namespaces,
chrooted into the fresh root, with ``container=clp-test`` in its environment. What it gets there,
and why:

- its own ``/run``, and a ``/dev`` of its own (tmpfs: null, zero, full, random, urandom and tty
  bound from the host, its own devpts, shm and mqueue); its ``/dev/console`` is a pty whose
  other end a thread copies to ``console.log``: a containerized systemd logs to its console, and
  so do the services here (``systemd.default_standard_output=tty``: there is no journald);
- a ``/proc`` of its pid namespace whose ``sys/`` and ``sysrq-trigger`` are read-only (systemd
  raises ``fs.nr_open`` at boot, a clp panic writes the sysrq trigger: both are the host kernel's);
- ``/sys`` read-only and, on ``/sys/fs/cgroup``, a cgroup2 seen through its cgroup namespace,
  whose root is a cgroup made for it in the host's cgroup2 hierarchy (a hybrid host's
  ``unified`` one will do): systemd sees a pure cgroup2 tree and is at its top;
- its own loopback (systemd brings it up) and host name (``systemd.hostname=``), and no
  capability to load kernel modules or set the clock;
- only two unit directories (``SYSTEMD_UNIT_PATH``): the fresh root's ``/etc/systemd/system``,
  empty until something is installed, and ``/run/clp-boot`` with empty targets standing in for
  the ones units name (``sysinit.target``, ``network-online.target``, ...). No unit of the host
  is ever loaded. It boots into (the empty) ``multi-user.target``, as a server does: what is
  enabled later is wanted by an active target, so a stopped service stays loaded with its
  timestamps and exit status, as on a server, instead of being garbage-collected at once.

:meth:`close` kills that PID 1, which ends every process of its pid namespace, and removes the
cgroups; the mounts die with the mount namespace.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.integration.freshroot import PATH, FreshRoot

SYSTEMD = Path("/lib/systemd/systemd")
NAMESPACES = ("--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup")
ENTER = ("--mount", "--pid", "--uts", "--ipc", "--net", "--cgroup", "--root", "--wd")
# systemd loads kernel modules at boot (autofs4, ...) and may set the clock: not the host's
DROPPED_CAPS = "-sys_module,-sys_time"
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
# empty stand-ins for the targets the units name, directly or through DefaultDependencies=
STUB_TARGETS = ("sysinit", "basic", "shutdown", "umount", "local-fs",
                "local-fs-pre", "network-online", "multi-user")


class BootError(RuntimeError):
    pass


def cgroup2_mount() -> Path | None:
    """Where the host's cgroup2 hierarchy is mounted (/sys/fs/cgroup, or its ``unified``
    directory on a hybrid host), if it is."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def cannot_boot() -> str | None:
    """Why systemd cannot boot in namespaces here, found by doing what :meth:`Booted.boot`
    needs (not by guessing from versions), or None when all of it works."""
    if os.geteuid() != 0:
        return "namespaces, mounts and cgroups need root"
    try:
        r = subprocess.run([str(SYSTEMD), "--version"], capture_output=True, text=True,
                           timeout=10)
    except OSError as e:
        return f"no systemd to boot: {SYSTEMD}: {e}"
    if r.returncode != 0:
        return f"{SYSTEMD} --version failed: {r.stderr.strip()}"
    cg = cgroup2_mount()
    if cg is None:
        return "no cgroup2 hierarchy is mounted (systemd needs one to track its services)"
    probe = cg / f"clp-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        return f"cannot make a cgroup for systemd in {cg}: {e}"
    r = subprocess.run(["unshare", *NAMESPACES, "--fork", "true"], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        return f"unshare {' '.join(NAMESPACES)} failed: {r.stderr.strip()}"
    return None


class Console:
    """A pty for systemd's /dev/console; a thread copies what is written to it into a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.master, self.slave = os.openpty()
        self.tty = os.ttyname(self.slave)
        self.thread = threading.Thread(target=self._copy, daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        with open(self.path, "ab", buffering=0) as out:
            while True:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: no one holds the other end any more
                    return
                if not data:
                    return
                out.write(data.replace(b"\r\n", b"\n"))

    def close(self) -> None:
        os.close(self.slave)
        self.thread.join(timeout=5)
        os.close(self.master)


class Booted:
    """systemd booted in ``fresh``; :meth:`run` runs a command beside it, in all its
    namespaces and its root."""

    def __init__(self, fresh: FreshRoot, name: str = "server1") -> None:
        self.fresh, self.name = fresh, name
        self.cgroup = (cgroup2_mount() or Path("/nonexistent")) / f"clp-systemd-{name}-" \
            f"{secrets.token_hex(3)}"
        self.proc: subprocess.Popen | None = None
        self.console: Console | None = None
        self.pid = 0  # systemd's pid, as the host sees it
        root = fresh.dir
        (root / "sys").mkdir(exist_ok=True)
        (root / "var/lib").mkdir(parents=True, exist_ok=True)
        if not (root / "var/run").is_symlink():
            (root / "var/run").symlink_to("../run")  # or systemd taints itself "var-run-bad"
        boot = fresh.state / "clp-boot"
        boot.mkdir(exist_ok=True)
        for t in STUB_TARGETS:
            # DefaultDependencies=no: starting shutdown.target (a test's "poweroff") stops the
            # services, not multi-user.target, whose wants keep them loaded
            (boot / f"{t}.target").write_text(f"[Unit]\nDescription={t} (clp test boot)\n"
                                              "DefaultDependencies=no\n")

    def _script(self, tty: str) -> str:
        r, s = shlex.quote(str(self.fresh.dir)), self.fresh.state
        q = shlex.quote
        dev = [f"touch {r}/dev/{n} && mount --bind /dev/{n} {r}/dev/{n}" for n in DEV_NODES]
        env = {"container": "clp-test", "PATH": PATH, "LANG": "C.UTF-8",
               "SYSTEMD_UNIT_PATH": "/etc/systemd/system:/run/clp-boot"}
        # in a container, systemd reads the kernel command line's settings from its own argv
        args = ["systemd.unit=multi-user.target", "systemd.log_target=console",
                "systemd.log_level=info", "systemd.default_standard_output=tty",
                "systemd.default_standard_error=tty", f"systemd.hostname={self.name}"]
        return "\n".join([
            "set -e",
            f"mount --bind -o ro /usr {r}/usr",
            f"mount --bind -o ro /etc {r}/etc",
            f"mount --bind {q(str(s / 'systemd'))} {r}/etc/systemd",
            f"mount --bind -o ro {q(str(self.fresh.repo))} {r}/src",
            f"mount --bind -o ro {q(str(self.fresh.wheels))} {r}/wheels",
            f"mount -t tmpfs -o mode=755 tmpfs {r}/run",
            f"mkdir {r}/run/clp-boot && cp {q(str(s / 'clp-boot'))}/* {r}/run/clp-boot/",
            f"mount -t tmpfs -o mode=755 tmpfs {r}/dev",
            *dev,
            f"mkdir {r}/dev/shm {r}/dev/pts {r}/dev/mqueue && ln -s pts/ptmx {r}/dev/ptmx",
            f"mount -t tmpfs -o mode=1777 tmpfs {r}/dev/shm",
            f"mount -t mqueue mqueue {r}/dev/mqueue",
            f"mount -t devpts -o newinstance,ptmxmode=0666 devpts {r}/dev/pts",
            f"touch {r}/dev/console && mount --bind {q(tty)} {r}/dev/console",
            f"mount -t proc proc {r}/proc",
            f"for p in sys sysrq-trigger; do [ ! -e {r}/proc/$p ] || "
            f"{{ mount --bind {r}/proc/$p {r}/proc/$p && "
            f"mount -o remount,bind,ro {r}/proc/$p; }}; done",
            f"mount -t sysfs -o ro sysfs {r}/sys",
            f"mount -t cgroup2 cgroup2 {r}/sys/fs/cgroup",
            f"exec chroot {r} setpriv --bounding-set={DROPPED_CAPS} /usr/bin/env -i "
            + " ".join(q(f"{k}={v}") for k, v in env.items())
            + f" {SYSTEMD} " + " ".join(args)])

    def boot(self, timeout: float = 30) -> None:
        """Start systemd and wait until it says it runs (``systemctl is-system-running``)."""
        self.console = Console(self.fresh.state / "console.log")
        self.cgroup.mkdir()
        inner = ["unshare", *NAMESPACES, "--fork", "--kill-child", "--propagation", "private",
                 "--", "sh", "-c", self._script(self.console.tty)]
        outer = f"echo $$ > {shlex.quote(str(self.cgroup))}/cgroup.procs && exec " + \
            " ".join(shlex.quote(a) for a in inner)
        with open(self.fresh.state / "boot.log", "wb") as log:
            self.proc = subprocess.Popen(["sh", "-c", outer], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BootError(f"systemd ended at boot (status {self.proc.returncode}): "
                                f"{self.log()}")
            self.pid = self.pid or self._child()
            if self.pid:
                state = self.run("systemctl is-system-running", timeout=10).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.1)
        raise BootError(f"systemd not running within {timeout:g} s (state {state!r}): "
                        f"{self.log()}")

    def _child(self) -> int:
        assert self.proc is not None
        with contextlib.suppress(OSError):
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            for pid in kids.split():
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
        return 0

    def log(self) -> str:
        """What systemd, and the services, wrote to the console (then the boot script)."""
        text = ""
        for name in ("console.log", "boot.log"):
            with contextlib.suppress(OSError):
                text += (self.fresh.state / name).read_text(errors="replace")
        return text[-6000:]

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``sh -c command`` in systemd's namespaces and root, with a clean environment."""
        argv = ["nsenter", f"--target={self.pid}", *ENTER, "/usr/bin/env", "-i", f"PATH={PATH}",
                "HOME=/root", "LANG=C.UTF-8", "/bin/sh", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def close(self) -> None:
        """Kill systemd, and so its pid namespace; then remove its cgroups, deepest first."""
        try:
            if self.proc is not None:
                if self.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):  # unshare --kill-child: its child
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        finally:
            if self.console is not None:
                self.console.close()
            self._remove_cgroups()

    def _remove_cgroups(self) -> None:
        if not self.cgroup.exists():
            return
        deadline = time.monotonic() + 20
        while "populated 1" in (self.cgroup / "cgroup.events").read_text():
            if time.monotonic() > deadline:
                raise BootError(f"processes left in {self.cgroup}")
            time.sleep(0.05)
        for d in sorted((p for p in self.cgroup.rglob("*") if p.is_dir()),
                        key=lambda p: len(p.parts), reverse=True):
            d.rmdir()
        self.cgroup.rmdir()
