"""Shared bits of the benchmarks: the machine line and table printing."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clp.lab import Lab


def machine() -> str:
    cpu = "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [title, fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(out)


def alert_records(lab: Lab) -> Iterator[tuple[str | None, Any, dict[str, Any]]]:
    """(module, event id, record) of every alert-log record of every server of ``lab``."""
    for server in lab.servers:
        path = lab.root_of(server) / "log" / "alert.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            rec = json.loads(line)
            yield rec.get("module"), rec.get("event_id"), rec


median = statistics.median
