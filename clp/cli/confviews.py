"""The configuration views of ``clpstat``: ``-i`` (all), ``--cl``, ``--sv``, ``--hb``, ``--np``,
``--grp``, ``--rsc``, ``--mon`` (each for one name, or all), read from this server's clp.conf.

Blocks in the product's manner (``[Server0 : server1]`` and ``Key : value`` lines); ``--detail``
adds every parameter with its value (defaults filled in). ``--json`` prints the same items from
the validated configuration.
"""

from __future__ import annotations

from typing import Any

from clp.cli.statviews import RULE, header
from clp.config.model import ClusterConfig

KINDS = ("cl", "sv", "hb", "np", "grp", "rsc", "mon")
ON_OFF = {True: "On", False: "Off"}


def _kv(key: str, value: object) -> str:
    return f"    {key:<30}: {value}"


def _params(params: Any, prefix: str = "") -> list[str]:
    lines = []
    for key, value in params.items():
        if isinstance(value, dict) and value:
            lines += _params(value, f"{prefix}{key}.")
        else:
            lines.append(_kv(f"{prefix}{key}", value))
    return lines


def cluster_block(c: ClusterConfig, detail: bool) -> list[str]:
    lines = [f"  [Cluster Name: {c.name}]",
             _kv("Heartbeat Interval", f"{c.heartbeat_interval:g} s"),
             _kv("Heartbeat Timeout", f"{c.heartbeat_timeout:g} s"),
             _kv("Server Sync Wait Time", f"{c.sync_wait:g} s"),
             _kv("Network Partition Action",
                 c.network_partition.action.replace("_", " ")),
             _kv("Disable Monitor Recovery", ON_OFF[c.monitor_settings.disable_recovery]),
             _kv("Monitor Delay Warning", f"{c.monitor_settings.delay_warning:g} %")]
    if detail:
        p = c.ports
        lines += [_kv("Internal Communication Port", p.rpc),
                  _kv("Data Transfer Port", p.transfer), _kv("Heartbeat Port", p.heartbeat),
                  _kv("WebManager HTTP Port", p.webmgr), _kv("Alert Sync Port", p.alertsync),
                  _kv("Restrain Final Action Alone",
                      ON_OFF[c.monitor_settings.restrain_final_action_alone])]
    return lines


def server_blocks(c: ClusterConfig, name: str | None, detail: bool) -> list[str]:
    lines = []
    for s in c.servers:
        if name is None or s.name == name:
            lines.append(f"  [Server{s.priority} : {s.name}]")
            lines.append(_kv("Priority", f"{s.priority}" + (" (master)" if s.priority == 0
                                                            else "")))
            lines.append(_kv("Heartbeat Paths", ", ".join(i.name for i in c.paths_of(s.name))))
            if detail:
                for ic in c.paths_of(s.name):
                    where = ic.addresses.get(s.name) or ic.devices.get(s.name) or ic.target
                    lines.append(_kv(f"{ic.name}", where))
    return lines


def heartbeat_blocks(c: ClusterConfig, name: str | None, detail: bool) -> list[str]:
    lines = []
    for i, ic in enumerate(c.interconnects):
        if name is None or ic.name == name:
            lines += [f"  [HB{i} : {ic.name}]", _kv("Type", f"{ic.type}hb"),
                      _kv("Servers", ", ".join(ic.servers))]
            if detail:
                lines += [_kv(s, a) for s, a in {**ic.addresses, **ic.devices}.items()]
                if ic.target:
                    lines.append(_kv("Target", ic.target))
    return lines


def np_blocks(c: ClusterConfig, name: str | None, detail: bool) -> list[str]:
    lines = []
    for i, r in enumerate(c.network_partition.resolvers):
        if name is None or r.name == name:
            target = ", ".join(r.targets) if r.type == "ping" else f"{r.target}{r.path}"
            lines += [f"  [NP{i} : {r.name}]", _kv("Type", f"{r.type}np"),
                      _kv("Target", target), _kv("Servers", ", ".join(r.servers))]
            if detail:
                lines += [_kv("Interval", f"{r.interval:g} s"),
                          _kv("Timeout", f"{r.timeout:g} s"), _kv("Retry Count", r.retry)]
    return lines


def group_blocks(c: ClusterConfig, name: str | None, detail: bool) -> list[str]:
    lines = []
    for i, g in enumerate(c.groups):
        if name is None or g.name == name:
            lines += [f"  [Group{i} : {g.name}]", _kv("Type", "failover"),
                      _kv("Startup Attribute", f"{g.start.capitalize()} Startup"),
                      _kv("Failback Attribute", f"{g.failback.capitalize()} Failback"),
                      _kv("Failover Exclusive Attribute", g.exclusive.capitalize()),
                      _kv("Startup Servers", ", ".join(g.servers)),
                      _kv("Resources", ", ".join(r.name for r in g.resources))]
    return lines


def resource_blocks(c: ClusterConfig, name: str | None, detail: bool) -> list[str]:
    lines = []
    index = 0
    for g in c.groups:
        for rc in g.resources:
            if name is None or rc.name == name:
                lines += [f"  [Resource{index} : {rc.name}]", _kv("Type", rc.type),
                          _kv("Group", g.name),
                          _kv("Depends On", ", ".join(rc.depends) or "-")]
                if detail:
                    a, d = rc.activation, rc.deactivation
                    lines += _params(dict(rc.params))
                    lines += [_kv("Activation Retry Threshold", a.retry),
                              _kv("Failover Threshold", a.failover_threshold),
                              _kv("Final Action (activation)", a.final_action),
                              _kv("Deactivation Retry Threshold", d.retry),
                              _kv("Final Action (deactivation)", d.final_action)]
            index += 1
    return lines


def monitor_blocks(c: ClusterConfig, name: str | None, detail: bool) -> list[str]:
    lines = []
    for i, m in enumerate(c.monitors):
        if name is None or m.name == name:
            r = m.recovery
            timing = "Always" if m.timing == "always" else f"Active ({m.target})"
            lines += [f"  [Monitor{i} : {m.name}]", _kv("Type", m.type),
                      _kv("Monitor Timing", timing), _kv("Interval", f"{m.interval:g} s"),
                      _kv("Timeout", f"{m.timeout:g} s"), _kv("Retry Count", m.retry),
                      _kv("Recovery Target", f"{r.target} ({r.kind.replace('_', ' ')})"),
                      _kv("Reactivation Threshold", r.reactivation_threshold),
                      _kv("Failover Threshold", r.failover_threshold),
                      _kv("Final Action", r.final_action)]
            if detail:
                lines += [_kv("Wait Time to Start Monitoring", f"{m.wait_start:g} s"),
                          _kv("Nice Value", m.nice), _kv("Servers", ", ".join(m.servers)),
                          _kv("Do Not Retry at Timeout", ON_OFF[m.no_retry_on_timeout]),
                          _kv("No Recovery at Timeout", ON_OFF[m.no_recovery_on_timeout]),
                          _kv("Counter Reset After", f"{r.reset_after:g} s"),
                          *_params(dict(m.params))]
    return lines


BLOCKS = {"sv": server_blocks, "hb": heartbeat_blocks, "np": np_blocks, "grp": group_blocks,
          "rsc": resource_blocks, "mon": monitor_blocks}
NAMES = {"sv": "server", "hb": "heartbeat", "np": "np", "grp": "group", "rsc": "resource",
         "mon": "monitor"}


def names_of(c: ClusterConfig, kind: str) -> list[str]:
    return {"sv": lambda: list(c.server_names),
            "hb": lambda: [i.name for i in c.interconnects],
            "np": lambda: [r.name for r in c.network_partition.resolvers],
            "grp": lambda: [g.name for g in c.groups],
            "rsc": lambda: [r.name for g in c.groups for r in g.resources],
            "mon": lambda: [m.name for m in c.monitors]}[kind]()


def render(c: ClusterConfig, kinds: list[str], name: str | None, detail: bool) -> str:
    lines = [header("CLUSTER INFORMATION")]
    for kind in kinds:
        lines += cluster_block(c, detail) if kind == "cl" else BLOCKS[kind](c, name, detail)
    lines.append(RULE)
    return "\n".join(lines)


def as_json(c: ClusterConfig, kinds: list[str], name: str | None) -> dict[str, Any]:
    """The selected parts of the validated configuration (defaults filled in)."""
    raw = c.raw
    part = {"cl": lambda: {"cluster": raw["cluster"],
                           "network_partition": {"action": raw["network_partition"]["action"]}},
            "sv": lambda: {"servers": raw["servers"]},
            "hb": lambda: {"interconnects": {ic.name: item for ic, item in
                                             zip(c.interconnects, raw["interconnects"],
                                                 strict=True)}},
            "np": lambda: {"resolvers": {r.name: item for r, item in
                                         zip(c.network_partition.resolvers,
                                             raw["network_partition"]["resolvers"],
                                             strict=True)}},
            "grp": lambda: {"groups": {g: {k: v for k, v in item.items() if k != "resources"}
                                       for g, item in raw["groups"].items()}},
            "rsc": lambda: {"resources": {r: item for g in raw["groups"].values()
                                          for r, item in g["resources"].items()}},
            "mon": lambda: {"monitors": raw["monitors"]}}
    out: dict[str, Any] = {}
    for kind in kinds:
        chunk = part[kind]()
        if name is not None:
            chunk = {k: ({n: v for n, v in items.items() if n == name}
                         if isinstance(items, dict) and kind != "cl" else items)
                     for k, items in chunk.items()}
        out.update(chunk)
    return out
