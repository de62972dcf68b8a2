"""Power actions of a final action or of clpdown: shutdown, reboot, panic this server.

In a lab server (``CLPLAB`` set) the action ends the server's own init (pid 1 of its pid
namespace), never the host: SIGTERM = shutdown, SIGUSR1 = reboot, SIGUSR2 = panic.
``CLP_NO_POWER=1`` (set for the whole test session) refuses every action before anything runs, so
a test can never power off the machine it runs on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("clp.power")

LAB_SIGNALS = {"shutdown": signal.SIGTERM, "reboot": signal.SIGUSR1, "panic": signal.SIGUSR2}
LINUX_ARGV = {"shutdown": ["systemctl", "poweroff"], "reboot": ["systemctl", "reboot"]}
LINUX_FALLBACK = {"shutdown": ["shutdown", "-h", "now"], "reboot": ["shutdown", "-r", "now"]}
PROC = Path("/proc")  # tests point it elsewhere


class PowerRefused(RuntimeError):
    """The power action did not happen: disabled here (``CLP_NO_POWER=1``), or the kernel
    refused it (a panic needs to write ``/proc/sysrq-trigger``)."""


def _act(action: str) -> None:
    if os.environ.get("CLP_NO_POWER") == "1":
        raise PowerRefused(f"{action} refused: CLP_NO_POWER=1 disables power actions")
    log.warning("power action: %s of this server", action)
    if os.environ.get("CLPLAB"):
        os.kill(1, LAB_SIGNALS[action])
        return
    if sys.platform.startswith("sunos"):
        from clp.platform.solaris import POWER_ARGV

        subprocess.run(POWER_ARGV[action], check=False, timeout=60)
        return
    if action == "panic":
        try:
            (PROC / "sys/kernel/sysrq").write_text("1")
            (PROC / "sysrq-trigger").write_text("c")
        except OSError as e:
            raise PowerRefused(f"panic failed: cannot write /proc/sysrq-*: {e}") from e
        return
    try:
        done = subprocess.run(LINUX_ARGV[action], check=False, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        done = False
    if not done:
        subprocess.run(LINUX_FALLBACK[action], check=False, timeout=60)


def shutdown() -> None:
    _act("shutdown")


def reboot() -> None:
    _act("reboot")


def panic() -> None:
    _act("panic")
