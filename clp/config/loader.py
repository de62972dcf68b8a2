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
    NetworkPartition,
    Ports,
    Recovery,
    Resolver,
    ResourceConfig,
    ServerConfig,
)
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
    fill_defaults(build_schema(), data)
    found = [*issues, *schema_issues(data), *cross_issues(data)]
    if directory is not None:
        found.extend(scripts_issues(data, directory))
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
    data, issues = check_data(_read(path), path)
    if not (path / "scripts").is_dir():
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
            retry=int(item.get("retry", 0 if item["type"] == "http" else 3)),
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
        monitors=_default_monitors(groups),
        sync_wait=float(cluster["sync_wait"]),
    )


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


def _default_monitors(groups: tuple[GroupConfig, ...]) -> tuple[MonitorConfig, ...]:
    """One fipw<N> per fip resource, as the product creates them with the resource."""
    fips = [rc.name for g in groups for rc in g.resources if rc.type == "fip"]
    return tuple(
        MonitorConfig(f"fipw{n}", "fipw", target, MappingProxyType({}))
        for n, target in enumerate(fips, start=1)
    )
