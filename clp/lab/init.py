"""The init of one lab server: pid 1 of its fresh pid, mount, ipc and uts namespaces.

Started by :class:`clp.lab.Lab` as ``ip netns exec <lab>-<server> unshare --mount --pid --ipc
--uts --fork --mount-proc --propagation private python -m clp.lab.init ...``. It gives the server
its hostname, its own ``/dev/shm``, message queues and ``/mnt``, its install root at the product's
path and its shared disks as ``/dev/lab/disk<n>``, then runs ``clpsupervise`` as its only child
and stays pid 1: like a real init it reaps orphans (a resource script that daemonized, a command
whose ``nsenter`` died).

Power actions reach it as signals (:mod:`clp.platform.power` sends them to pid 1):

- SIGTERM, shutdown: passed on to ``clpsupervise``; when it has stopped, init exits and the
  kernel ends every process left in the pid namespace.
- SIGUSR1, reboot: the same stop, then everything left is killed, the mounts made since boot are
  undone, ``/dev/shm`` and the message queues are emptied and ``clpsupervise`` runs again.
- SIGUSR2, panic: init exits at once, taking every process and (with the mount namespace) every
  mount with it.

Whatever the way out, the addresses the cluster added (floating IPs) are removed first: a powered
off server must not keep answering ARP for them. Everything else happens inside the private mount
namespace, so the host sees none of it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from clp.lab.netns import LabError, reset_addresses
from clp.paths import DEFAULT_ROOT

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
CODE_DIRS = ("bin", "lib", "share")  # clp.lab.installed.CODE_DIRS
MNT_DETACH = 2
HIDDEN_RUN_DIRS = ("/run/systemd", "/run/dbus")
# a userw with method softdog / ipmi inside must never feed (or, closing it, arm) the host's
# watchdog: each is covered by /dev/null
HIDDEN_DEVICES = ("/dev/watchdog", "/dev/watchdog0", "/dev/watchdog1")
# A fresh ipc namespace starts at the kernel's default of 10 messages per queue; a real server's
# administrator raises it the same way (sysctl fs.mqueue.msg_max), and clusterpro_evt uses it.
# The lab passes a smaller depth when its servers must share one user's RLIMIT_MSGQUEUE.
MQUEUE_MSG_MAX = 256
WATCHDOG_LINK = "/dev/lab/watchdog"  # clp.lab.watchdog.DEVICE
MAX_BOOTS = 10_000  # reboots of one init; each needs a SIGUSR1, this only bounds the loop
KILL_WAIT = 5.0
_libc = ctypes.CDLL(None, use_errno=True)


def log(server: str, text: str) -> None:
    print(f"clp.lab.init: {server}: {text}", file=sys.stderr, flush=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       flags, data.encode() or None), f"mount {source} on {target}")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def prepare(server: str, host_root: str, disks: dict[str, tuple[int, int]],
            links: dict[str, str] | None = None, mq_depth: int = MQUEUE_MSG_MAX,
            code: str | None = None) -> None:
    """Hostname, private /dev/shm, mqueue and /mnt, install root, shared disk nodes, and
    ``/dev/lab/<name>`` symlinks (a serial cable's end, which moves when it is re-plugged).
    ``code``: an installation whose bin/ lib/ share/ cover the install root's, read-only."""
    socket.sethostname(server)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    if os.path.isdir("/dev/mqueue"):  # POSIX queues are private to the ipc ns even unmounted
        mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    Path("/proc/sys/fs/mqueue/msg_max").write_text(f"{mq_depth}\n")  # this ipc ns only
    mount(host_root, DEFAULT_ROOT, None, MS_BIND)
    for sub in (CODE_DIRS if code else ()):
        mount(f"{code}/{sub}", f"{DEFAULT_ROOT}/{sub}", None, MS_BIND)
        mount("none", f"{DEFAULT_ROOT}/{sub}", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    for private in HIDDEN_RUN_DIRS:  # a `reboot` inside must not reach the host's systemd
        if os.path.isdir(private):
            mount("tmpfs", private, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    for device in HIDDEN_DEVICES:
        if os.path.exists(device):
            mount("/dev/null", device, None, MS_BIND)
    if os.path.isdir("/mnt"):  # mount points made by a disk resource stay with this server
        mnt = Path(host_root).parent / "mnt"
        mnt.mkdir(exist_ok=True)
        mount(str(mnt), "/mnt", None, MS_BIND)
    if disks or links:
        mount("tmpfs", "/dev/lab", "tmpfs", MS_NOSUID, "mode=0755")  # devices allowed
        for name, (major, minor) in disks.items():
            os.mknod(f"/dev/lab/{name}", stat.S_IFBLK | 0o600, os.makedev(major, minor))
        for name, target in (links or {}).items():
            os.symlink(target, f"/dev/lab/{name}")
    os.chdir("/")


class Panic(Exception):
    """Raised by the SIGUSR2 handler: init must end now."""


class Power:
    """The last power action asked for. Handlers record it and pass SIGTERM on; the loop acts."""

    def __init__(self) -> None:
        self.child: int | None = None
        self.action: str | None = None  # None (running), "shutdown" or "reboot"

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGUSR1, self._reboot)
        signal.signal(signal.SIGUSR2, self._panic)

    def _forward(self, signum: int) -> None:
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signum)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            self.action = "shutdown"
        self._forward(signum)

    def _reboot(self, signum: int, frame: FrameType | None) -> None:
        if self.action != "shutdown":
            self.action = "reboot"
        self._forward(signal.SIGTERM)

    def _panic(self, signum: int, frame: FrameType | None) -> None:
        raise Panic


def supervise(argv: list[str], power: Power) -> int:
    """Run ``argv`` as the only child; reap everything; return the child's status."""
    child = os.fork()
    if child == 0:
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                        signal.SIGUSR2):
                signal.signal(sig, signal.SIG_DFL)
            os.setsid()
            os.execv(argv[0], argv)
        except OSError as e:
            print(f"clp.lab.init: cannot run {argv[0]}: {e}", file=sys.stderr, flush=True)
        os._exit(127)
    power.child = child
    try:
        while True:  # ends when clpsupervise ends, or when nothing is left to wait for
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 0
            if pid == child:
                rc = os.waitstatus_to_exitcode(status)
                return rc if rc >= 0 else 128 - rc
    finally:
        power.child = None


def kill_the_rest() -> None:
    """SIGKILL every other process of this pid namespace and reap them (bounded)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)  # from pid 1: everything in the namespace but init
    deadline = time.monotonic() + KILL_WAIT
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        if not [p for p in os.listdir("/proc") if p.isdigit() and p != "1"]:
            return
        time.sleep(0.02)


def mount_ids() -> list[tuple[int, str]]:
    """(mount id, mount point) of this mount namespace, in mount order."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        found.append((int(fields[0]), fields[4].replace("\\040", " ")))
    return found


def reset_watchdog() -> None:
    """The lab's watchdog device of this server, if it has one, stops (a reset machine has no
    running watchdog): opened, the magic character, closed. Its last opener is gone, but the
    lab's daemon may not have heard of the close yet (busy): a few tries."""
    for _ in range(50):
        try:
            fd = os.open(WATCHDOG_LINK, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                log("watchdog", f"cannot reset {WATCHDOG_LINK}: {e}")
                return
            time.sleep(0.02)
            continue
        try:
            os.write(fd, b"V")
        except OSError as e:
            log("watchdog", f"cannot reset {WATCHDOG_LINK}: {e}")
        finally:
            os.close(fd)
        return
    log("watchdog", f"cannot reset {WATCHDOG_LINK}: still open (busy) after 1 s")


def power_cycle(baseline: set[int]) -> None:
    """What a reboot clears: processes, mounts made since boot, /dev/shm, message queues, a
    running watchdog."""
    kill_the_rest()
    reset_watchdog()
    for mount_id, point in reversed(mount_ids()):
        if mount_id not in baseline:
            with contextlib.suppress(OSError):
                umount(point)
    for d in ("/dev/shm", "/dev/mqueue"):
        with contextlib.suppress(OSError):
            for entry in os.scandir(d):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["ipcrm", "--all"], capture_output=True, timeout=10)  # this ipc ns only


def run_server(opts: argparse.Namespace, power: Power) -> tuple[int, str]:
    """Boot, and boot again on every reboot; returns (exit code, how it ended)."""
    baseline = {mount_id for mount_id, _ in mount_ids()}
    rc = 0
    for _ in range(MAX_BOOTS):
        if power.action == "shutdown":  # asked before clpsupervise was (re)started
            break
        log(opts.server, f"up; running {opts.clpsupervise}")
        rc = supervise([opts.clpsupervise], power)
        log(opts.server, f"clpsupervise exited ({rc})")
        if power.action != "reboot":
            break
        log(opts.server, "reboot")
        power.action = None
        power_cycle(baseline)
        clear_addresses(opts)
    return rc, power.action or f"exit {rc}"


def clear_addresses(opts: argparse.Namespace) -> None:
    try:
        reset_addresses(dict(b.split("=", 1) for b in opts.base))
    except LabError as e:
        log(opts.server, f"cannot reset addresses: {e}")


def record(opts: argparse.Namespace, how: str) -> None:
    """Tell the lab how this server went away (read by Lab.state_of)."""
    with contextlib.suppress(OSError):
        (Path(opts.host_root).parent / "power").write_text(how + "\n")


def parse(args: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m clp.lab.init")
    p.add_argument("server")
    p.add_argument("host_root")
    p.add_argument("clpsupervise")
    p.add_argument("--disk", action="append", default=[], metavar="NAME=MAJOR:MINOR")
    p.add_argument("--base", action="append", default=[], metavar="IFNAME=ADDRESS/PREFIX")
    p.add_argument("--link", action="append", default=[], metavar="NAME=TARGET")
    p.add_argument("--mq-depth", type=int, default=MQUEUE_MSG_MAX, metavar="N")
    p.add_argument("--code", metavar="DIR", help="an installation to run (clp.lab.installed)")
    return p.parse_args(args)


def main(args: list[str]) -> int:
    opts = parse(args)
    Path(opts.host_root, "log").mkdir(parents=True, exist_ok=True)
    power = Power()
    power.install()
    try:
        disks = {name: (int(nums.split(":")[0]), int(nums.split(":")[1]))
                 for name, nums in (d.split("=", 1) for d in opts.disk)}
        links = dict(link.split("=", 1) for link in opts.link)
        prepare(opts.server, opts.host_root, disks, links, opts.mq_depth, opts.code)
    except (OSError, ValueError, IndexError) as e:
        log(opts.server, str(e))
        return 1
    os.environ["CLP_ROOT"] = DEFAULT_ROOT
    if opts.code:  # the installation's python must not import the repository's clp
        os.environ.pop("PYTHONPATH", None)
    os.environ["HOSTNAME"] = opts.server
    try:
        rc, how = run_server(opts, power)
    except Panic:
        rc, how = 137, "panic"
    finally:  # on any way out, even a bug here: a dead server keeps no floating IP
        clear_addresses(opts)
    record(opts, how)
    log(opts.server, f"down ({how})")
    if how == "panic":
        os._exit(rc)  # at once: the kernel ends every process of the pid namespace
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
