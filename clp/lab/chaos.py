"""``clplab chaos``: a seeded, bounded schedule of faults against a running lab, watched for a
group active on two servers.

- :func:`plan` draws the schedule from a seed (pure: the same seed, servers, links and targets give
  the same schedule): ``faults`` faults within ``span`` seconds, each with its repair, never two on
  one server at once, one network partition and one clock step at a time. The kinds: ``crash``
  (then restart), ``hang`` (then resume; its cables go dark), ``freeze`` (a hang whose cables stay
  up: its kernel goes on answering for its addresses; then resume), ``unplug`` of a cable (pub,
  ic1, the heartbeat disk path, the serial cable, a shared-disk path; then plug), ``partition``
  (the network split in two, the router on one side; then heal), ``kill`` (on a server, the process
  a ``pidw`` monitor watches: the monitor's recovery is the repair), ``clock`` (the host's
  real-time clock stepped forward or back by 2 to 30 s, as NTP steps it, for every server at once
  since they share the host's clock; then stepped back).
- :class:`Watcher` samples every running or hung server's addresses and mounts and records every
  time an exclusive resource of the lab's configuration (a floating IP, a disk resource's
  device or mount point) is on two servers in two consecutive samples. A hung server counts:
  its kernel still holds the address and the mount (and writes its dirty pages to the disk),
  dark cables or not. Such a sample is *allowed* (reported, not a failure) only when the hung
  server (hung then, or at the sample before: the moment between its wake-up and its
  self-fence) feeds no kernel watchdog: the keepalive method's known limit (docs/monitors.md),
  it is fenced only when it runs again. Everything else is a violation.
- :func:`run` plays a schedule on a lab with the watcher on, repairs whatever is left (and
  starts the cluster services that stopped themselves, as an operator would), waits for every
  group that starts by itself (``start: auto``) to run (once: the watcher sees to that), and
  returns a :class:`Report` (the seed replays it).

The partition simulation proves the decision rules; this runs the real services, commands and
kernel, with what the lab can break.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clp.config import ClusterConfig, load_config
from clp.config.fencing import watchdog_waits
from clp.lab import com_cable, hb_disk
from clp.lab.lab import Lab
from clp.lab.netns import LINKS, LabError
from clp.paths import DEFAULT_ROOT, InstallRoot
from clp.resources.exec import async_pid_file

KINDS = ("crash", "hang", "freeze", "unplug", "partition", "kill", "clock")
REPAIR = {"crash": "restart", "hang": "resume", "freeze": "resume", "unplug": "plug",
          "partition": "heal", "clock": "unclock"}  # a kill's repair is its monitor's
CLOCK_STEP = (2.0, 30.0)  # seconds a clock step moves the host's clock, either way
KEEPALIVE_LIMIT = ("on a hung server without a kernel watchdog (the keepalive method's limit, "
                   "docs/monitors.md: fenced only when it runs again)")
DURATION = (2.0, 12.0)  # seconds a fault lasts, drawn uniformly
SAMPLE = 0.2  # seconds between two samples of the watcher
CONVERGE = 120.0  # seconds the end waits for every group to run once


@dataclass(frozen=True)
class Step:
    at: float  # seconds from the start
    action: str  # crash, restart, hang, resume, unplug, plug, partition, heal
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.at:7.2f} s  {self.action} {' '.join(self.args)}".rstrip()


def plan(seed: int, servers: list[str], faults: int, span: float,
         links: list[str] | None = None, kinds: tuple[str, ...] = KINDS,
         router: bool = True, targets: list[str] | None = None) -> list[Step]:
    """``faults`` faults (each with its repair) within ``span`` seconds, from ``seed``;
    ``router``: the lab has one (a partition puts it on one side); ``targets``: the processes
    a kill may hit (``group/resource`` of an exec resource a pidw monitor watches; none: no
    kill is drawn)."""
    if faults < 0 or span <= 0 or not servers:
        raise ValueError("a plan needs servers, faults >= 0 and a positive span")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(f"unknown fault kinds {unknown} (kinds: {', '.join(KINDS)})")
    rng = random.Random(seed)
    links = links or list(LINKS)
    kinds = tuple(k for k in kinds if k != "kill" or targets)
    busy: dict[str, list[tuple[float, float]]] = {s: [] for s in [*servers, "network", "clock"]}
    steps: list[Step] = []
    for _ in range(faults if kinds else 0):
        for _try in range(100):  # bounded: a crowded plan has fewer faults than asked
            kind = rng.choice(kinds)
            start = round(rng.uniform(0, span * 0.8), 2)
            end = round(min(span, start + rng.uniform(*DURATION)), 2)
            if kind == "partition":
                if len(servers) < 2:
                    continue
                side = rng.sample(servers, rng.randint(1, len(servers) - 1))
                rest = [s for s in servers if s not in side]
                who, args = "network", (",".join(side),
                                        ",".join([*rest, *(["router"] if router else [])]))
            elif kind == "clock":
                step = round(rng.uniform(*CLOCK_STEP), 2) * rng.choice((1, -1))
                who, args = "clock", (f"{step:+.2f}",)
            else:
                who = rng.choice(servers)
                args = (who, rng.choice(links)) if kind == "unplug" else \
                    (who, rng.choice(sorted(targets or []))) if kind == "kill" else (who,)
            if any(start < b and a < end for a, b in busy[who]):
                continue  # one fault at a time per server (one partition, one clock step)
            busy[who].append((start, end))
            steps.append(Step(start, kind, args))
            if kind in REPAIR:
                steps.append(Step(end, REPAIR[kind], args))
            break
    return sorted(steps, key=lambda s: (s.at, s.action not in REPAIR.values()))  # repairs
    # first at one moment: a fault may start as another on that server ends


def judge(holders: list[str], hung: set[str], watchdogs: set[str]) -> tuple[bool, str]:
    """A resource doubled on ``holders`` in two samples: (allowed, what to add to its line).
    Allowed only when a holder is hung (now or at the sample before: the moment it wakes and
    fences itself) and none of the hung ones feeds a kernel watchdog (``watchdogs``): the
    keepalive method's limit."""
    frozen = [s for s in holders if s in hung]
    if frozen and not set(frozen) & watchdogs:
        return True, f", {', '.join(frozen)} hung {KEEPALIVE_LIMIT}"
    return False, f" ({', '.join(frozen)} hung)" if frozen else ""


def installed_config(lab: Lab) -> ClusterConfig:
    """The configuration the lab's servers run (server1's copy: every server has the same)."""
    return load_config(InstallRoot(lab.root_of(lab.servers[0])).config_dir)


def exclusive_resources(lab: Lab) -> dict[str, tuple[str, frozenset[str]]]:
    """What may be active on one server only, from the lab's installed configuration:
    name -> ("address", {ip}) for a floating IP, ("mount", {device, mount point}) for a disk
    resource (either one mounted counts)."""
    config = installed_config(lab)
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for g in config.groups:
        for rc in g.resources:
            if rc.type == "fip":
                out[f"{g.name}/{rc.name}"] = ("address", frozenset({str(rc.params["ip"])}))
            elif rc.type == "disk":
                out[f"{g.name}/{rc.name}"] = ("mount", frozenset(
                    {str(rc.params["device"]), str(rc.params["mount_point"])}))
    return out


class Watcher:
    """Samples the lab every ``period`` seconds (see the module); ``violations`` lists each
    doubled sample after the first."""

    def __init__(self, lab: Lab, period: float = SAMPLE) -> None:
        self.lab = lab
        self.period = period
        self.resources = exclusive_resources(lab)
        self.watchdogs = set(watchdog_waits(installed_config(lab)))  # servers fenced when hung
        self.violations: list[str] = []
        self.allowed: list[str] = []  # doubled, with a hung server the keepalive limit allows
        self.samples = 0
        self._doubled: set[str] = set()
        self.hung: set[str] = set()  # hung at the last sample
        self._was_hung: set[str] = set()  # at the one before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clplab-watch", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def holders(self) -> dict[str, list[str]]:
        """Resource -> the running or hung servers it is active on, now."""
        states = self.lab.status()["servers"]
        self._was_hung, self.hung = self.hung, {s for s, v in states.items()
                                                if v["state"] == "hung"}
        live = [s for s, v in states.items() if v["state"] in ("running", "hung")]
        addresses = {s: self.lab.addresses_on(s) for s in live}
        mounts = {s: self.lab.mounts_of(s) for s in live}
        out: dict[str, list[str]] = {}
        for name, (kind, what) in self.resources.items():
            if kind == "address":
                out[name] = [s for s in live if what & set(addresses[s])]
            else:
                out[name] = [s for s in live
                             if any(src in what or tgt in what for src, tgt in mounts[s])]
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                held = self.holders()
            except Exception:  # noqa: BLE001 - a server changing state under us: next sample
                continue
            self.samples += 1
            doubled = {name for name, servers in held.items() if len(servers) > 1}
            for name in sorted(doubled & self._doubled):
                text = f"{time.strftime('%T')} {name} on {', '.join(held[name])}"
                allowed, said = judge(held[name], self.hung | self._was_hung, self.watchdogs)
                (self.allowed if allowed else self.violations).append(text + said)
            self._doubled = doubled


@dataclass
class Report:
    seed: int
    steps: list[Step]
    violations: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # the keepalive limit (Watcher)
    errors: list[str] = field(default_factory=list)  # steps the lab refused, with why
    not_running: list[str] = field(default_factory=list)  # groups not on exactly one server
    # servers whose cluster service had stopped itself (a network-partition action, a final
    # action): it stays stopped until the operator starts it, as in the product; the repair at
    # the end does (clpcl -s), as an operator would once the faults are gone
    stopped: list[str] = field(default_factory=list)
    samples: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.samples > 0 and not self.violations and not self.not_running

    def text(self) -> str:
        lines = [f"chaos seed {self.seed}: {len(self.steps)} steps in {self.seconds:.1f} s, "
                 f"{self.samples} samples",
                 *(f"  {s}" for s in self.steps)]
        lines += [f"double activation: {v}" for v in self.violations]
        lines += [f"allowed: {v}" for v in self.allowed]
        lines += [f"step refused: {e}" for e in self.errors]
        lines += [f"group not running on exactly one server: {g}" for g in self.not_running]
        lines += [f"{s}: its cluster service had stopped itself (network-partition or final "
                  f"action); the repair started it (clpcl -s)" for s in self.stopped]
        if not self.samples:
            lines.append("the watcher could not take a single sample")
        lines.append("OK: never active on two servers, every group running once" if self.ok
                     else f"FAILED (replay: clplab chaos --seed {self.seed})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "steps": [str(s).strip() for s in self.steps],
                "violations": self.violations, "allowed": self.allowed, "errors": self.errors,
                "not_running": self.not_running, "stopped": self.stopped,
                "samples": self.samples,
                "seconds": round(self.seconds, 1), "ok": self.ok}


def kill_targets(config: ClusterConfig) -> list[str]:
    """``group/resource`` of every exec resource a pidw monitor watches."""
    watched = {m.target for m in config.monitors if m.type == "pidw"}
    return sorted(f"{g.name}/{rc.name}" for g in config.groups for rc in g.resources
                  if rc.type == "exec" and rc.name in watched)


def step_clock(seconds: float) -> None:
    """The host's real-time clock moves by ``seconds`` (every lab server shares it)."""
    try:
        time.clock_settime(time.CLOCK_REALTIME, time.time() + seconds)
    except OSError as e:
        raise LabError(f"cannot step the clock: {e}") from None


def kill(lab: Lab, server: str, target: str) -> None:
    """The process group of the exec resource ``group/resource`` on ``server`` gets SIGKILL,
    found as its pidw monitor finds it (LabError when it does not run there)."""
    group, resource = target.split("/", 1)
    pgid = async_pid_file(InstallRoot(Path(DEFAULT_ROOT)), group, resource)
    r = lab.exec(server, ["sh", "-c", f'pgid=$(cat "{pgid}") && kill -9 "-$pgid"'],
                 timeout=10)
    if r.returncode != 0:
        raise LabError(f"{target} does not run on {server}")


def apply(lab: Lab, step: Step) -> None:
    """One step on the lab (LabError when the lab refuses it)."""
    if step.action in ("clock", "unclock"):
        seconds = float(step.args[0])
        step_clock(seconds if step.action == "clock" else -seconds)
        return
    if step.action in ("partition", "heal"):
        if step.action == "heal":
            lab.heal()
        else:
            lab.partition([side.split(",") for side in step.args])
        return
    server, *rest = step.args
    if step.action == "freeze":
        lab.hang(server, live=True)
        return
    if step.action == "kill":
        kill(lab, server, rest[0])
        return
    state = lab.state_of(server)
    if (step.action == "restart" and state in ("running", "hung")) or \
            (step.action == "resume" and state != "hung"):
        return  # already so (a final action of the cluster may have powered it off or on)
    getattr(lab, step.action)(server, *rest)


def lab_links(lab: Lab) -> list[str]:
    """The cables a fault may pull in this lab: LANs, and the heartbeat disk path, the serial
    cable and the shared-disk paths when it has them."""
    return [*LINKS, *([hb_disk.LINK] if lab.doc.get("diskhb") else []),
            *([com_cable.LINK] if lab.doc.get("com") else []),
            *[d["name"] for d in lab.doc.get("disks", [])]]


def repair_all(lab: Lab) -> list[str]:
    """Whatever a refused step left: every cable in, no partition, nobody hung or off; then,
    as an operator does once the faults are gone, every cluster service that stopped itself is
    started again (``clpcl -s``). Returns those servers."""
    with contextlib.suppress(LabError):
        lab.heal()
    for server in lab.servers:
        for link in lab_links(lab):
            with contextlib.suppress(LabError):
                lab.plug(server, link)
        with contextlib.suppress(LabError):
            state = lab.state_of(server)
            if state == "hung":
                lab.resume(server)
            elif state != "running":
                lab.restart(server)
    started = []
    for server in lab.servers:
        if lab.state_of(server) == "running" and \
                lab.exec(server, ["clpstat", "--local"], timeout=20).returncode != 0:
            lab.exec(server, ["clpcl", "-s"], timeout=60)
            started.append(server)
    return started


def groups_not_running(lab: Lab, groups: set[str]) -> list[str]:
    """Of ``groups``, those not Online on a server, as the first server whose cluster service
    runs sees it (a server that took the network-partition action keeps its service stopped,
    as the product does, until the operator starts it). LabError when no clpstat answers."""
    why = "no server runs"
    for observer in [s for s in lab.servers if lab.state_of(s) == "running"]:
        r = lab.exec(observer, ["clpstat", "--json"], timeout=20)
        if r.returncode == 0:
            break
        why = f"clpstat on {observer} failed ({r.returncode}): {r.stdout.strip()}"
    else:
        raise LabError(why)
    seen = json.loads(r.stdout)["groups"]
    return [f"{g}: {v['state']} on {v.get('server')}" for g, v in seen.items()
            if g in groups and (v["state"] != "Online" or not v.get("server"))]


def auto_start_groups(lab: Lab) -> set[str]:
    """The groups that run by themselves (``start: auto``): every one must run at the end; a
    manual one runs only when the operator starts it."""
    return {g.name for g in installed_config(lab).groups if g.start == "auto"}


def run(lab: Lab, seed: int, faults: int, span: float,
        kinds: tuple[str, ...] = KINDS) -> Report:
    steps = plan(seed, lab.servers, faults, span, lab_links(lab), kinds,
                 bool(lab.doc.get("router")), kill_targets(installed_config(lab)))
    groups = auto_start_groups(lab)
    report = Report(seed, steps)
    started = time.monotonic()
    stepped = 0.0  # the clock's step not undone yet
    with Watcher(lab) as watcher:
        try:
            for step in steps:
                time.sleep(max(0.0, started + step.at - time.monotonic()))
                try:
                    apply(lab, step)
                except LabError as e:
                    report.errors.append(f"{step}: {e}")
                else:
                    if step.action in ("clock", "unclock"):
                        stepped += float(step.args[0]) * (1 if step.action == "clock" else -1)
        finally:  # never leave the host's clock stepped
            if stepped:
                step_clock(-stepped)
        report.stopped = repair_all(lab)
        deadline = time.monotonic() + CONVERGE
        while time.monotonic() < deadline:  # bounded by CONVERGE
            try:
                report.not_running = groups_not_running(lab, groups)
            except (LabError, ValueError, KeyError) as e:
                report.not_running = [f"(the end state could not be read: {e})"]
            if not report.not_running:
                break
            time.sleep(1.0)
        time.sleep(2 * SAMPLE)  # the last samples see the end state
    report.violations, report.samples = watcher.violations, watcher.samples
    report.allowed = watcher.allowed
    report.seconds = time.monotonic() - started
    return report
