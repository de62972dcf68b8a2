"""clp.conf loading: schema, defaults, line numbers, cross-checks, model, apply methods."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from clp.config import (
    APPLY_METHODS,
    ClusterConfig,
    ConfigError,
    ConfigIssue,
    apply_method,
    build_schema,
    load_config,
    register_type,
)
from clp.config.lab import generate_lab_config

SAMPLE = Path(__file__).resolve().parents[2] / "clp" / "samples" / "lab2"

BASE = """\
cluster:
  name: cluster
servers:
  server1: {}
  server2: {}
interconnects:
  - type: lan
    addresses: {server1: 198.18.1.1, server2: 198.18.1.2}
  - type: lan
    addresses: {server1: 198.18.0.1, server2: 198.18.0.2}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "clp.conf").write_text(text)
    return tmp_path


def load(tmp_path: Path, text: str) -> ClusterConfig:
    return load_config(write(tmp_path, text))


def errors(tmp_path: Path, text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [i for i in info.value.issues if i.severity == "error"]


def messages(issues: list[ConfigIssue]) -> list[str]:
    return [str(i) for i in issues]


def with_interconnects(extra: str, servers: str = "  server1: {}\n  server2: {}\n") -> str:
    return f"cluster:\n  name: cluster\nservers:\n{servers}interconnects:\n{extra}"


# --- clean configurations ---------------------------------------------------------------------


def test_sample_lab2_is_clean() -> None:
    cfg = load_config(SAMPLE)
    assert cfg.warnings == ()
    assert cfg.name == "cluster"
    assert cfg.server_names == ("server1", "server2")
    assert (cfg.heartbeat_interval, cfg.heartbeat_timeout) == (1.0, 10.0)
    assert [i.name for i in cfg.interconnects] == ["lanhb1", "lanhb2", "diskhb1", "comhb1"]
    assert [r.name for r in cfg.network_partition.resolvers] == ["pingnp1"]
    assert dict(cfg.interconnects[0].addresses) == {
        "server1": "198.18.1.1",
        "server2": "198.18.1.2",
    }
    assert dict(cfg.interconnects[1].addresses) == {
        "server1": "198.18.0.1",
        "server2": "198.18.0.2",
    }
    assert [g.name for g in cfg.groups] == ["ManagementGroup", "failover1"]
    assert cfg.group("failover1").activation_order() == ["fip1", "disk1", "exec1"]
    assert [m.name for m in cfg.monitors] == ["userw", "fipw1", "fipw2", "ipw1", "miiw1", "pidw1"]


@pytest.mark.parametrize("n", range(2, 9))
def test_generated_lab_config_is_clean(tmp_path: Path, n: int) -> None:
    cfg = load(tmp_path, generate_lab_config(n, 0.1, 0.5))
    assert cfg.warnings == ()
    assert cfg.server_names == tuple(f"server{i}" for i in range(1, n + 1))
    assert cfg.interconnects[0].addresses[f"server{n}"] == f"198.18.1.{n}"
    assert cfg.interconnects[1].addresses[f"server{n}"] == f"198.18.0.{n}"
    assert (cfg.heartbeat_interval, cfg.heartbeat_timeout) == (0.1, 0.5)


def test_generated_two_server_config_equals_the_sample_but_its_groups(tmp_path: Path) -> None:
    sample = load_config(SAMPLE).raw
    sample["groups"] = {}
    sample["monitors"] = {"userw": sample["monitors"]["userw"]}  # the others watch groups
    sample["cluster"]["sync_wait"] = 300  # the defaults, filled in
    generated = load(tmp_path, generate_lab_config(2, 1, 10, diskhb=True, com=True)).raw
    generated["network_partition"]["resolvers"] = sample["network_partition"]["resolvers"]
    assert generated == sample


def test_generated_lab_config_limits(tmp_path: Path) -> None:
    assert len(load(tmp_path, generate_lab_config(32, 3, 90)).servers) == 32
    for n in (1, 33):
        with pytest.raises(ValueError):
            generate_lab_config(n, 3, 90)


def test_defaults_are_filled_from_the_schema(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE)
    assert (cfg.heartbeat_interval, cfg.heartbeat_timeout) == (3.0, 90.0)
    assert dataclasses.astuple(cfg.ports) == (29001, 29002, 29002, 29003, 29003)
    assert cfg.network_partition.action == "stop_cluster_service"
    assert cfg.raw["cluster"]["heartbeat"] == {"interval": 3, "timeout": 90}
    assert cfg.raw["network_partition"] == {"action": "stop_cluster_service", "resolvers": []}
    assert cfg.raw["cluster"]["syslog"] == {"enabled": True, "facility": "daemon"}


def test_partial_section_keeps_given_values_and_fills_the_rest(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        BASE.replace(
            "  name: cluster\n",
            "  name: c\n  ports: {rpc: 30001}\n  heartbeat: {timeout: 0.5, interval: 0.1}\n",
        ),
    )
    assert (cfg.ports.rpc, cfg.ports.webmgr) == (30001, 29003)
    assert (cfg.heartbeat_interval, cfg.heartbeat_timeout) == (0.1, 0.5)


def test_null_server_entries_are_accepted(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE.replace("server1: {}", "server1:").replace("server2: {}", "server2:"))
    assert cfg.server_names == ("server1", "server2")


# --- model --------------------------------------------------------------------------------------

FULL = with_interconnects("""\
  - type: lan
    addresses: {server1: 198.18.1.1, server2: 198.18.1.2}
  - type: disk
    devices: {server2: /dev/loop0, server1: /dev/loop0}
  - type: lan
    addresses: {server1: 198.18.0.1, server2: 198.18.0.2}
  - type: com
    devices: {server1: /dev/ttyS0, server2: /dev/ttyS0}
  - type: witness
    target: 198.18.0.250:80
    servers: [server2]
network_partition:
  action: stop_cluster_service_and_shutdown
  resolvers:
    - type: ping
      targets: [198.18.0.254]
      servers: [server1, server2]
    - type: http
      target: web.example:80
      servers: [server1]
""")


def test_model_names_priorities_and_paths(tmp_path: Path) -> None:
    cfg = load(tmp_path, FULL)
    assert [(i.name, i.priority) for i in cfg.interconnects] == [
        ("lanhb1", 0),
        ("diskhb1", 1),
        ("lanhb2", 2),
        ("comhb1", 3),
        ("witnesshb1", 4),
    ]
    assert cfg.interconnects[1].servers == ("server1", "server2")  # server priority order
    assert cfg.interconnects[4].target == "198.18.0.250:80"
    assert [i.name for i in cfg.paths_of("server1")] == ["lanhb1", "diskhb1", "lanhb2", "comhb1"]
    assert cfg.server_index("server2") == 1
    assert cfg.servers[0].priority == 0
    with pytest.raises(KeyError):
        cfg.server_index("server9")
    np = cfg.network_partition
    assert np.action == "stop_cluster_service_and_shutdown"
    assert [(r.name, r.targets, r.target, r.servers) for r in np.resolvers] == [
        ("pingnp1", ("198.18.0.254",), None, ("server1", "server2")),
        ("httpnp1", (), "web.example:80", ("server1",)),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "other"  # type: ignore[misc]


# --- YAML-level errors --------------------------------------------------------------------------


def test_duplicate_keys_are_errors_with_their_line(tmp_path: Path) -> None:
    text = BASE.replace("  server2: {}\n", "  server2: {}\n  server1: {}\n").replace(
        "  name: cluster\n", "  name: cluster\n  name: other\n"
    )
    found = errors(tmp_path, text)
    assert messages(found) == [
        "cluster.name: duplicate key 'name' (first defined at line 2) (clp.conf:3)",
        "servers.server1: duplicate key 'server1' (first defined at line 5) (clp.conf:7)",
    ]


def test_duplicate_key_inside_flow_mapping(tmp_path: Path) -> None:
    text = BASE.replace("{server1: 198.18.1.1,", "{server1: 198.18.1.1, server1: 198.18.1.9,")
    assert [i.path for i in errors(tmp_path, text)] == ["interconnects[0].addresses.server1"]


def test_non_string_key_is_an_error(tmp_path: Path) -> None:
    found = errors(tmp_path, BASE.replace("  server2: {}", "  1: {}"))
    assert any(i.path == "servers.1" and "not a string" in i.message and i.line == 5 for i in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "clp.conf is empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("cluster:\n  name: [x\nservers: {}\n", "not valid YAML"),
    ],
)
def test_unusable_files(tmp_path: Path, text: str, expected: str) -> None:
    (found,) = errors(tmp_path, text)
    assert expected in found.message


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    (found,) = errors(tmp_path, "cluster:\n  name: x\n bad: : :\n")
    assert found.line == 3


def test_missing_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a configuration directory"):
        load_config(tmp_path / "nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path)


def test_missing_scripts_dir_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "clp.conf").write_text(BASE)
    (warning,) = load_config(tmp_path).warnings
    assert "scripts" in warning.message and warning.severity == "warning"


# --- schema errors ------------------------------------------------------------------------------


def test_issue_renders_path_message_and_line() -> None:
    issue = ConfigIssue(
        "interconnects[0].addresses.server1", "'198.18.1.300' is not an IPv4 address", 12
    )
    assert str(issue) == (
        "interconnects[0].addresses.server1: '198.18.1.300' is not an IPv4 address (clp.conf:12)"
    )
    assert str(ConfigIssue("", "clp.conf is empty")) == "clp.conf is empty"


def test_five_different_errors_are_reported_at_once(tmp_path: Path) -> None:
    text = """\
cluster:
  name: my.cluster
  heartbeat: {interval: 5, timeout: 5}
servers:
  server1: {}
  server2: {}
interconnects:
  - type: lan
    addresses: {server1: 198.18.1.1, server2: 198.18.1.2}
  - type: lan
    addresses:
      server1: 198.18.1.300
      server3: 198.18.0.2
  - type: disk
    devices: {server1: dev/sdb1, server2: /dev/sdb1}
    size: 10
"""
    found = errors(tmp_path, text)
    assert [(i.path, i.line) for i in found] == [
        ("cluster.name", 2),
        ("cluster.heartbeat.interval", 3),
        ("interconnects[1].addresses.server1", 12),
        ("interconnects[1].addresses.server3", 13),
        ("interconnects[2].devices.server1", 15),
        ("interconnects[2].size", 16),
    ]
    assert str(found[2]) == (
        "interconnects[1].addresses.server1: '198.18.1.300' is not an IPv4 address (clp.conf:12)"
    )
    assert "not defined in servers" in found[3].message
    assert "absolute device path" in found[4].message
    assert found[5].message == "unknown parameter 'size'"


def test_missing_required_sections(tmp_path: Path) -> None:
    found = errors(tmp_path, "cluster: {}\n")
    assert sorted(i.message for i in found) == [
        "required parameter 'interconnects' is missing",
        "required parameter 'name' is missing",
        "required parameter 'servers' is missing",
    ]
    assert next(i for i in found if "'name'" in i.message).line == 1


@pytest.mark.parametrize(
    ("hb", "message"),
    [
        ("{interval: 0, timeout: 1}", "must be greater than 0 (got 0)"),
        ("{interval: 1, timeout: 0}", "must be greater than 0 (got 0)"),
        ("{interval: fast, timeout: 1}", "'fast' is not a number"),
        ("{interval: 2, timeout: 1}", "must be shorter than the timeout"),
        ("{interval: 1, timeout: 1}", "must be shorter than the timeout"),
        ("{interval: 1, timeout: 9, beat: 1}", "unknown parameter 'beat'"),
    ],
)
def test_heartbeat_values(tmp_path: Path, hb: str, message: str) -> None:
    found = errors(tmp_path, BASE.replace("  name: cluster\n", f"  name: c\n  heartbeat: {hb}\n"))
    assert any(message in i.message and i.line == 3 for i in found), messages(found)


def test_port_range(tmp_path: Path) -> None:
    found = errors(tmp_path, BASE.replace("  name: cluster\n", "  name: c\n  ports: {rpc: 0}\n"))
    assert messages(found) == ["cluster.ports.rpc: must be at least 1 (got 0) (clp.conf:3)"]


def test_syslog_facility_is_a_known_name(tmp_path: Path) -> None:
    good = load(tmp_path, BASE.replace("  name: cluster\n",
                                       "  name: c\n  syslog: {facility: local3}\n"))
    assert good.raw["cluster"]["syslog"] == {"enabled": True, "facility": "local3"}
    found = errors(tmp_path, BASE.replace("  name: cluster\n",
                                          "  name: c\n  syslog: {facility: local8}\n"))
    assert [(i.path, i.line) for i in found] == [("cluster.syslog.facility", 3)]
    assert "local7" in found[0].message


def test_unknown_interconnect_type(tmp_path: Path) -> None:
    found = errors(tmp_path, BASE + "  - type: fiber\n")
    assert messages(found) == [
        "interconnects[2].type: unknown interconnect type 'fiber' "
        "(known: com, disk, lan, witness) (clp.conf:11)"
    ]


def test_unknown_action(tmp_path: Path) -> None:
    found = errors(tmp_path, BASE + "network_partition: {action: panic}\n")
    assert [i.path for i in found] == ["network_partition.action"]


# --- apply methods and the registry -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("cluster.heartbeat.interval", "suspend_cluster"),
        ("cluster.heartbeat.timeout", "suspend_cluster"),
        ("cluster.name", "stop_cluster"),
        ("cluster.ports.webmgr", "restart_webmgr"),
        ("servers.server1", "stop_cluster"),
        ("interconnects[0].addresses.server1", "stop_cluster"),
        ("interconnects[3].target", "stop_cluster"),
        ("network_partition.action", "suspend_cluster"),
        ("cluster.syslog.facility", "upload_only"),
        ("network_partition.resolvers[0].targets[0]", "suspend_cluster"),
    ],
)
def test_apply_method(path: str, method: str) -> None:
    assert apply_method(path) == method


def test_apply_method_unknown_path() -> None:
    with pytest.raises(KeyError):
        apply_method("cluster.colour")


def _leaves(schema: Any, inherited: str | None, path: str) -> list[tuple[str, str | None]]:
    method = schema.get("x-apply", inherited)
    children = [(f"{path}.{k}", v) for k, v in schema.get("properties", {}).items()]
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            children.append((f"{path}.<{key}>", schema[key]))
    children += [
        (f"{path}.<{b['if']['properties']['type']['const']}>", b["then"])
        for b in schema.get("allOf", [])
    ]
    if not children:
        return [(path, method)]
    return [leaf for p, sub in children for leaf in _leaves(sub, method, p)]


def test_every_parameter_records_a_known_apply_method() -> None:
    leaves = _leaves(build_schema(), None, "")
    assert leaves and all(method in APPLY_METHODS for _, method in leaves), leaves


def test_register_type_rejects_duplicates() -> None:
    with pytest.raises(ValueError):
        register_type("interconnect", "lan", {"type": "object"})
    with pytest.raises(ValueError):
        register_type("monitor", "ipw", {"type": "object"})
    with pytest.raises(KeyError):
        register_type("nothing", "ipw", {"type": "object"})


def test_config_error_separates_errors_from_warnings(tmp_path: Path) -> None:
    one_lan = BASE.split("  - type: lan\n    addresses: {server1: 198.18.0.1")[0]
    with pytest.raises(ConfigError) as info:
        load(tmp_path, one_lan.replace("name: cluster", "name: 'a b'"))
    assert [i.path for i in info.value.issues] == ["cluster.name"]
    assert [w.path for w in info.value.warnings] == ["interconnects"]
    assert "cluster.name: invalid cluster name" in str(info.value)


def test_a_ping_target_must_be_an_address_ping_can_reach(tmp_path: Path) -> None:
    scoped = FULL.replace("targets: [198.18.0.254]", "targets: ['fe80::1%eth0', '2001:db8::1']")
    assert load(tmp_path, scoped).network_partition.resolvers[0].targets == (
        "fe80::1%eth0", "2001:db8::1")
    for target, why in (("fe80::1", "link-local address: name its interface, as fe80::1%eth0"),
                        ("198.18.0.999", "is not an IPv4 address")):
        found = errors(tmp_path, FULL.replace("198.18.0.254", f"'{target}'"))
        assert [i.path for i in found] == ["network_partition.resolvers[0].targets[0]"]
        assert why in found[0].message, found[0].message
