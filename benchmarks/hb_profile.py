"""Where ``clusterpro``'s CPU goes: py-spy samples every thread of one server of the 8-server
lab of ``hb_cpu.py`` (interval 0.1 s, every path kind), leaves out the samples of threads that
wait (see IDLE), and prints the functions with the most samples of their own, with the share of
the samples they and their callees have.

Usage: python benchmarks/hb_profile.py [--seconds 30] [--top 25] [--lan-only]
                                      [--callees FUNCTION ...]
       --callees: also where the samples under FUNCTION (as printed: "name (file.py)") go,
       by its direct callees
       (root; needs py-spy: pip install py-spy, in the venv's bench extra)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.benchlib import machine, table  # noqa: E402
from benchmarks.hb_cpu import ALL, KINDS, LAN, N_SERVERS, config_dir, lab_up, service_pids  # noqa: E402
from tests.integration.labutil import wait_all_online  # noqa: E402

RATE = 500  # samples per second


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


# A sample whose innermost frame is one of these is a thread waiting (in the kernel or for a
# lock), not using the CPU: py-spy cannot tell them apart from work by itself here.
IDLE = {"EpollSelector.select (selectors.py)", "Condition.wait (threading.py)",
        "Serial.read (serialposix.py)", "_worker (thread.py)", "DiskDevice.cycle (diskio.py)",
        "RxTable.wait_lan (rxtable.py)"}  # a LAN path's receive thread, in C (poll, recvmmsg)


def profile(pid: int, seconds: float, out: Path) -> Counter[str]:
    """Collapsed stacks of every thread of ``pid`` -> samples, the waiting ones left out."""
    subprocess.run([py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds)),
                    "--rate", str(RATE), "--format", "raw", "--output", str(out)],
                   check=True, capture_output=True, timeout=seconds + 60)
    stacks: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and frame_name(stack.rsplit(";", 1)[-1]) not in IDLE:
            stacks[stack] += int(count)
    return stacks


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``."""
    func, _, where = frame.partition(" (")
    return f"{func} ({Path(where.rstrip(')').split(':')[0]).name})" if where else func


def top(stacks: Counter[str], n: int) -> tuple[list[list[str]], int]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += count
        for f in set(frames[1:]):  # the thread's name first
            total[f] += count
    samples = sum(stacks.values())
    by_own = [[f, f"{c / samples:.1%}", f"{total[f] / samples:.1%}"]
              for f, c in own.most_common(n)]
    return by_own, samples


def callees(stacks: Counter[str], function: str, n: int) -> list[list[str]]:
    """The samples with ``function`` in their stack, by the frame it called (its own: "-")."""
    under: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = [frame_name(f) for f in stack.split(";") if f]
        if function in frames:
            i = len(frames) - 1 - frames[::-1].index(function)
            under[frames[i + 1] if i + 1 < len(frames) else "-"] += count
    samples = sum(stacks.values())
    return [[f, f"{c / samples:.1%}"] for f, c in under.most_common(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--lan-only", action="store_true")
    ap.add_argument("--callees", nargs="*", default=[])
    args = ap.parse_args()
    kind = LAN if args.lan_only else ALL
    py_spy()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "conf"
        config_dir(conf, KINDS[kind])
        with lab_up("p", n=N_SERVERS, config_dir=conf, disks=0, client=False) as lab:
            wait_all_online(lab, timeout=180)
            time.sleep(5)
            pid = service_pids(lab, "server1")["clusterpro"][0]
            stacks = profile(pid, args.seconds, Path(tmp) / "stacks.txt")
    rows, samples = top(stacks, args.top)
    print(f"machine: {machine()}")
    print(table(f"clusterpro of server1, {N_SERVERS} servers at interval 0.1 s, {kind}: "
                f"{samples} working samples in {args.seconds:g} s at {RATE} Hz (about "
                f"{samples / args.seconds / RATE:.1%} of a thread's time)",
                ["function (by own samples)", "own", "with callees"], rows))
    for function in args.callees:
        print(table(f"under {function}, by callee (share of all samples)",
                    ["callee", "with its callees"], callees(stacks, function, args.top)))


if __name__ == "__main__":
    main()
