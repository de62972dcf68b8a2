"""The init of one lab server: pid 1 of its fresh pid, mount, ipc and uts namespaces.

Started by :class:`clp.lab.Lab` as ``ip netns exec <lab>-<server> unshare --mount --pid --ipc
--uts --fork --mount-proc --propagation private python -m clp.lab.init ...``. It gives the server
its hostname, its own ``/dev/shm`` and message queues, and its install root at the product's path,
then runs ``clpsupervise`` as its only child and stays pid 1: like a real init it reaps orphans
(a resource script that daemonized, a command whose ``nsenter`` died) and passes SIGTERM on to
``clpsupervise``. When ``clpsupervise`` exits, so does init, and with it the whole server.

Everything here happens inside the private mount namespace, so the host sees none of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path

from clp.paths import DEFAULT_ROOT

MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 2, 4, 8, 4096
HIDDEN_RUN_DIRS = ("/run/systemd", "/run/dbus")
# A fresh ipc namespace starts at the kernel's default of 10 messages per queue; a real server's
# administrator raises it the same way (sysctl fs.mqueue.msg_max), and clusterpro_evt uses it.
MQUEUE_MSG_MAX = 256
_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    rc = _libc.mount(source.encode(), target.encode(),
                     fstype.encode() if fstype else None, flags, data.encode() or None)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def prepare(server: str, host_root: str) -> None:
    """Hostname, private /dev/shm and mqueue, install root at the product's path."""
    socket.sethostname(server)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    if os.path.isdir("/dev/mqueue"):  # POSIX queues are private to the ipc ns even unmounted
        mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    Path("/proc/sys/fs/mqueue/msg_max").write_text(f"{MQUEUE_MSG_MAX}\n")  # this ipc ns only
    mount(host_root, DEFAULT_ROOT, None, MS_BIND)
    for private in HIDDEN_RUN_DIRS:  # a `reboot` inside must not reach the host's systemd
        if os.path.isdir(private):
            mount("tmpfs", private, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    os.chdir("/")


def supervise(argv: list[str]) -> int:
    """Run ``argv`` as the only child; reap everything; exit with the child's status."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            os.execv(argv[0], argv)
        except OSError as e:
            print(f"clp.lab.init: cannot run {argv[0]}: {e}", file=sys.stderr, flush=True)
        os._exit(127)

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:  # ends when clpsupervise ends, or when nothing is left to wait for
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if pid == child:
            rc = os.waitstatus_to_exitcode(status)
            return rc if rc >= 0 else 128 - rc


def main(args: list[str]) -> int:
    if len(args) != 3:
        print("usage: python -m clp.lab.init SERVER HOST_ROOT CLPSUPERVISE", file=sys.stderr)
        return 2
    server, host_root, clpsupervise = args
    Path(host_root, "log").mkdir(parents=True, exist_ok=True)
    try:
        prepare(server, host_root)
    except OSError as e:
        print(f"clp.lab.init: {server}: {e}", file=sys.stderr)
        return 1
    os.environ["CLP_ROOT"] = DEFAULT_ROOT
    os.environ["HOSTNAME"] = server
    print(f"clp.lab.init: {server} up; running {clpsupervise}", file=sys.stderr, flush=True)
    rc = supervise([clpsupervise])
    print(f"clp.lab.init: {server}: clpsupervise exited ({rc})", file=sys.stderr, flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
