"""Load a cluster configuration directory (``clp.conf`` + ``scripts/``) into a ``ClusterConfig``.

Order: read, parse with line marks, fill schema defaults, validate against the schema, run the
cross-checks, and only if no error was found build the model. All issues of all stages are
collected and raised together, each with its clp.conf line.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from clp.config.crosscheck import cross_issues
from clp.config.group_check import scripts_issues
from clp.config.group_schema import COMMON_PROPERTIES, resolve_depends
from clp.config.issues import CONFIG_FILE, ConfigError, ConfigIssue, sort_issues
from clp.config.model import (
    ClusterConfig,
    GroupConfig,
    Interconnect,
    MonitorConfig,
    MonitorRecovery,
    MonitorSettings,
    NetworkPartition,
    Ports,
    RebootLimitSettings,
    Recovery,
    RecoveryScript,
    Resolver,
    ResourceConfig,
    ServerConfig,
)
from clp.config.monitor_check import (
    add_default_monitors,
    monitor_scripts_issues,
    recovery_kind,
    script_path,
)
from clp.config.monitor_schema import LOCAL_SERVER, common_properties
from clp.config.rawdata import interconnect_servers
from clp.config.registry import build_schema
from clp.config.validation import fill_defaults, schema_issues
from clp.config.yamlload import line_of, load_yaml


def _read(directory: Path) -> str:
    if not directory.is_dir():
        raise ConfigError(
            [
                ConfigIssue(
                    "",
                    f"{directory} is not a configuration directory "
                    f"(it must hold {CONFIG_FILE} and scripts/)",
                )
            ]
        )
    conf = directory / CONFIG_FILE
    try:
        return conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue("", f"{conf} does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue("", f"cannot read {conf}: {exc}")]) from None


def _parse(text: str) -> tuple[Any, dict[str, int], list[ConfigIssue]]:
    try:
        data, lines, issues = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(
            [ConfigIssue("", f"{CONFIG_FILE} is not valid YAML: {problem}", line)]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"{CONFIG_FILE} is not valid YAML: {exc}")]) from None
    if data is None:
        raise ConfigError([ConfigIssue("", f"{CONFIG_FILE} is empty")])
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    "",
                    f"{CONFIG_FILE} must be a mapping with cluster, servers and interconnects",
                    1,
                )
            ]
        )
    return data, lines, issues


def check_data(
    text: str, directory: Path | None = None
) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Parse and check clp.conf text: (defaults-filled data, every issue with its line).

    With ``directory``, the exec resources' scripts are checked in its ``scripts/`` too.
    Raises ``ConfigError`` only when the text cannot be read as a YAML mapping at all.
    """
    data, lines, issues = _parse(text)
    add_default_monitors(data)
    fill_defaults(build_schema(), data)
    found = [*issues, *schema_issues(data), *cross_issues(data)]
    if directory is not None:
        found.extend(scripts_issues(data, directory))
        found.extend(monitor_scripts_issues(data, directory))
    located = [
        ConfigIssue(
            i.path, i.message, i.line if i.line is not None else line_of(lines, i.path), i.severity
        )
        for i in found
    ]
    return data, sort_issues(located)


def load_config(path: Path) -> ClusterConfig:
    """Load and validate the configuration directory ``path``; raise ``ConfigError`` on errors."""
    path = Path(path)
    # a pushed configuration (clpcfctrl) is a generation behind the `current` symlink: read
    # clp.conf and check scripts/ through one resolution of it, so a commit between the two
    # reads cannot pair one generation's clp.conf with another's scripts
    current = path / "current"
    files = current.resolve() if current.is_symlink() and current.is_dir() else path
    data, issues = check_data(_read(files), files)
    if not (files / "scripts").is_dir():
        issues.append(
            ConfigIssue(
                "",
                f"{path / 'scripts'} is missing; keep scripts/ together with {CONFIG_FILE}",
                severity="warning",
            )
        )
    if any(i.severity == "error" for i in issues):
        raise ConfigError(issues)
    warnings = tuple(i for i in issues if i.severity == "warning")
    return build_model(data, path, warnings)


def _numbered(items: list[dict[str, Any]], suffix: str) -> list[str]:
    """``<type><suffix><N>`` numbered per type in list order (lanhb1, lanhb2, diskhb1...)."""
    counts: dict[str, int] = {}
    names = []
    for item in items:
        counts[item["type"]] = counts.get(item["type"], 0) + 1
        names.append(f"{item['type']}{suffix}{counts[item['type']]}")
    return names


def build_model(
    data: dict[str, Any], directory: Path, warnings: tuple[ConfigIssue, ...] = ()
) -> ClusterConfig:
    """Model of already-validated, defaults-filled data."""
    order = list(data["servers"])

    def members(item: dict[str, Any]) -> tuple[str, ...]:
        used = set(interconnect_servers(item))
        return tuple(s for s in order if s in used)

    items = data["interconnects"]
    interconnects = tuple(
        Interconnect(
            name=name,
            type=item["type"],
            priority=index,
            addresses=MappingProxyType(dict(item.get("addresses", {}))),
            devices=MappingProxyType(dict(item.get("devices", {}))),
            target=item.get("target"),
            servers=members(item),
        )
        for index, (name, item) in enumerate(zip(_numbered(items, "hb"), items, strict=True))
    )
    np_data = data["network_partition"]
    resolvers = tuple(
        Resolver(
            name=name,
            type=item["type"],
            targets=tuple(item.get("targets", ())),
            target=item.get("target"),
            servers=members(item),
            interval=float(item.get("interval", 5)),
            timeout=float(item.get("timeout", 10 if item["type"] == "http" else 3)),
            retry=int(item.get("retry", 3 if item["type"] == "ping" else 0)),
            path=item.get("path", "/"),
        )
        for name, item in zip(
            _numbered(np_data["resolvers"], "np"), np_data["resolvers"], strict=True
        )
    )
    cluster = data["cluster"]
    groups = _groups(data, order)
    return ClusterConfig(
        name=cluster["name"],
        servers=tuple(ServerConfig(name, index) for index, name in enumerate(order)),
        heartbeat_interval=float(cluster["heartbeat"]["interval"]),
        heartbeat_timeout=float(cluster["heartbeat"]["timeout"]),
        ports=Ports(**cluster["ports"]),
        interconnects=interconnects,
        network_partition=NetworkPartition(np_data["action"], resolvers),
        warnings=tuple(warnings),
        directory=directory,
        raw=data,
        groups=groups,
        monitors=_monitors(data, order, groups, directory),
        monitor_settings=MonitorSettings(**cluster["monitor"]),
        reboot_limit=RebootLimitSettings(**cluster["reboot_limit"]),
        sync_wait=float(cluster["sync_wait"]),
    )


MONITOR_COMMON = frozenset(common_properties({}, ("always",)))


def _resource(name: str, item: dict[str, Any], depends: list[str]) -> ResourceConfig:
    act, deact = item["activation"], item["deactivation"]
    params = {k: v for k, v in item.items() if k != "type" and k not in COMMON_PROPERTIES}
    return ResourceConfig(
        name=name,
        type=item["type"],
        params=MappingProxyType(params),
        depends=tuple(depends),
        activation=Recovery(act["retry"], act["failover_threshold"], act["final_action"]),
        deactivation=Recovery(deact["retry"], 0, deact["final_action"]),
    )


def _groups(data: dict[str, Any], order: list[str]) -> tuple[GroupConfig, ...]:
    groups = []
    for name, group in data["groups"].items():
        resources = group["resources"]
        depends = resolve_depends(resources)
        groups.append(GroupConfig(
            name=name,
            servers=tuple(group.get("servers") or order),
            start=group["start"],
            failback=group["failback"],
            exclusive=group["exclusive"],
            resources=tuple(_resource(r, item, depends[r]) for r, item in resources.items()),
        ))
    return tuple(groups)


def _monitors(data: dict[str, Any], order: list[str], groups: tuple[GroupConfig, ...],
              directory: Path) -> tuple[MonitorConfig, ...]:
    from clp.monitors import registry

    group_of = {rc.name: g for g in groups for rc in g.resources}
    out = []
    for name, item in data["monitors"].items():
        kind = registry.get(item["type"])
        params = {k: v for k, v in item.items() if k != "type" and k not in MONITOR_COMMON}
        interval, timeout = kind.timing_of(item, data["cluster"]["heartbeat"])
        out.append(MonitorConfig(
            name=name, type=item["type"], target=item.get("target"),
            params=MappingProxyType(params),
            interval=interval, timeout=timeout,
            retry=int(item["retry"]), wait_start=float(item["wait_start"]),
            timing=item["timing"], nice=int(item["nice"]),
            servers=tuple(s for s in order if s in (item.get("servers") or order)),
            no_retry_on_timeout=bool(item["no_retry_on_timeout"]),
            no_recovery_on_timeout=bool(item["no_recovery_on_timeout"]),
            recovery=_recovery(name, item, kind, data, group_of, directory, len(order),
                               interval),
        ))
    return tuple(out)


def _recovery(name: str, item: dict[str, Any], kind: Any, data: dict[str, Any],
              group_of: dict[str, GroupConfig], directory: Path, n_servers: int,
              interval: float) -> MonitorRecovery:
    """A monitor's recovery action, its target resolved and its defaults applied: the type's
    own, else reactivation 3 (0 for LocalServer), failover 1, no operation."""
    rec = item["recovery"]
    target, target_kind = rec.get("target"), rec.get("target_type")
    if target is None:
        default = kind.default_recovery
        resource = item.get("target")
        target, target_kind = {"local_server": (LOCAL_SERVER, "local_server"),
                               "resource": (resource, "resource"),
                               "group": (group_of[resource].name if resource else None,
                                         "group")}[default]
    found, _why = recovery_kind(target, data, target_kind)
    defaults = {"reactivation_threshold": 0 if found == "local_server" else 3,
                "failover_threshold": 1, "final_action": "none",
                **kind.recovery_defaults_of(item)}
    values = {k: rec.get(k, v) for k, v in defaults.items()}
    if values["failover_threshold"] == "servers":
        group = group_of[target].name if found == "resource" else target
        values["failover_threshold"] = next(
            (len(g.servers) for g in group_of.values() if g.name == group), n_servers)
    script = rec["script"]
    used = script["count"] or any(script[f"before_{k}"] for k in
                                  ("reactivation", "failover", "final_action"))
    return MonitorRecovery(
        target=target, kind=str(found),
        reactivation_threshold=int(values["reactivation_threshold"]),
        failover_threshold=int(values["failover_threshold"]),
        final_action=str(values["final_action"]),
        reset_after=float(rec.get("reset_after", 10 * interval)),
        script=RecoveryScript(script_path(directory, name, script["path"]),
                              float(script["timeout"]), int(script["count"]),
                              bool(script["before_reactivation"]),
                              bool(script["before_failover"]),
                              bool(script["before_final_action"])) if used else None)
