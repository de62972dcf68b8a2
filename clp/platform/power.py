"""Power actions of a final action or of clpdown: shutdown, reboot, panic, reset this server.

``panic`` and ``reset`` go through the kernel's sysrq trigger ('c' crash, 'b' immediate reboot
without syncing or unmounting): what the product's keepalive driver does, with no user-space
step that could hang. The BMC actions run ``ipmitool`` against the local BMC (``chassis power
reset|off|cycle|diag``); a machine without a BMC (or without ipmitool) refuses them.

In a lab server (``CLPLAB`` set) the action ends the server's own init (pid 1 of its pid
namespace), never the host: SIGTERM = shutdown, SIGUSR1 = reboot, SIGUSR2 = panic; a reset and
every BMC action are a panic there (a lab server does not boot again by itself).
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

LAB_SIGNALS = {"shutdown": signal.SIGTERM, "reboot": signal.SIGUSR1, "panic": signal.SIGUSR2,
               "reset": signal.SIGUSR2}
SYSRQ = {"panic": "c", "reset": "b"}
# final actions through the BMC: ipmitool's chassis power command for each
BMC_ARGV = {"bmc_reset": ["ipmitool", "chassis", "power", "reset"],
            "bmc_power_off": ["ipmitool", "chassis", "power", "off"],
            "bmc_power_cycle": ["ipmitool", "chassis", "power", "cycle"],
            "bmc_nmi": ["ipmitool", "chassis", "power", "diag"]}
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
        os.kill(1, LAB_SIGNALS.get(action, signal.SIGUSR2))
        return
    if action in BMC_ARGV:
        try:
            done = subprocess.run(BMC_ARGV[action], check=False, timeout=60,
                                  capture_output=True)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PowerRefused(f"{action} failed: {' '.join(BMC_ARGV[action])}: {e}") from e
        if done.returncode != 0:
            raise PowerRefused(f"{action} failed: {' '.join(BMC_ARGV[action])} exited "
                               f"{done.returncode}: {done.stderr.decode(errors='replace')}")
        return
    if sys.platform.startswith("sunos"):
        from clp.platform.solaris import POWER_ARGV

        subprocess.run(POWER_ARGV[action], check=False, timeout=60)
        return
    if action in SYSRQ:
        try:
            (PROC / "sys/kernel/sysrq").write_text("1")
            (PROC / "sysrq-trigger").write_text(SYSRQ[action])
        except OSError as e:
            raise PowerRefused(f"{action} failed: cannot write /proc/sysrq-*: {e}") from e
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


def reset() -> None:
    _act("reset")


def bmc(action: str) -> None:
    """One of :data:`BMC_ARGV`'s actions."""
    if action not in BMC_ARGV:
        raise ValueError(f"unknown BMC action {action!r}")
    _act(action)
