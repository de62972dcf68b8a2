"""Every registered monitor type passes the same checks, as the resource types do."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from clp.config import build_model, check_data, registered_types
from clp.config.monitor_schema import FINAL_ACTIONS, TARGET_KINDS, monitor_fragment
from clp.monitors import registry
from clp.monitors.base import Check, Health, MonitorContext, MonitorType
from clp.paths import InstallRoot

TYPES = registry.all_types()
IDS = [t.name for t in TYPES]
COMMON = {"interval", "timeout", "retry", "wait_start", "timing", "target", "nice", "servers",
          "no_retry_on_timeout", "no_recovery_on_timeout", "recovery", "type"}
RECOVERY_KEYS = {"reactivation_threshold", "failover_threshold", "final_action"}

# What a monitor of each type needs besides its defaults: its required parameters and what its
# cross_check asks for, all harmless here (loopback, a file under tmp, this machine's lo).
NEEDS: dict[str, dict[str, Any]] = {
    "diskw": {"device": "{tmp}/disk.img"},
    "ipw": {"addresses": ["127.0.0.1"]},
    "miiw": {"device": "lo"},
    "mrw": {"category": "contract"},
    "mtw": {"members": ["userw"]},
    "psw": {"process_name": "*"},
}
TARGETS = {"fip": "fip1", "exec": "exec1"}


def _props(kind: type[MonitorType]) -> dict[str, dict[str, Any]]:
    return dict(kind.schema.get("properties", {}))


def _conf(kind: type[MonitorType], tmp: Path, recovery: bool = True,
          target: bool = True) -> str:
    item: dict[str, Any] = {"type": kind.name}
    for key, value in NEEDS.get(kind.name, {}).items():
        item[key] = value.format(tmp=tmp) if isinstance(value, str) else value
    missing = set(kind.schema.get("required", [])) - set(item)
    assert not missing, f"add {kind.name}'s required {sorted(missing)} to NEEDS"
    if target and kind.needs_target:
        item["target"] = TARGETS[kind.target_types[0]]
    if recovery and kind.default_recovery != "local_server" and "target" not in item:
        item["recovery"] = {"target": "LocalServer"}
    data = {
        "cluster": {"name": "c"},
        "servers": {"s1": {}, "s2": {}},
        "interconnects": [{"type": "lan", "addresses": {"s1": "198.18.1.1", "s2": "198.18.1.2"}},
                          {"type": "lan", "addresses": {"s1": "198.18.0.1", "s2": "198.18.0.2"}}],
        "groups": {"g": {"resources": {"fip1": {"type": "fip", "ip": "198.18.0.12"},
                                       "exec1": {"type": "exec", "mode": "async"}}}},
        "monitors": {"m": item},
    }
    return yaml.safe_dump(data, sort_keys=False)


def _errors(issues: list[Any]) -> list[str]:
    return [str(i) for i in issues if i.severity == "error"]


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_schema_is_a_valid_fragment_with_defaults(kind: type[MonitorType]) -> None:
    schema = kind.schema
    Draft202012Validator.check_schema(schema)
    fragment = monitor_fragment(kind.name, schema, kind.defaults, kind.timings)
    Draft202012Validator.check_schema(fragment)
    props = _props(kind)
    required = set(schema.get("required", []))
    assert required <= set(props)
    for name, prop in props.items():
        assert "x-apply" in prop, f"{kind.name}.{name} does not say how a change is applied"
        assert name not in COMMON, f"{kind.name}.{name} collides with a common key"
        if name not in required:
            assert "default" in prop, f"optional {kind.name}.{name} has no default"
            assert Draft202012Validator(prop).is_valid(prop["default"]), \
                f"the default of {kind.name}.{name} is not valid for it"
    # the common keys' per-type defaults are valid values of the common keys
    for key, value in kind.defaults.items():
        assert key in fragment["properties"], f"{kind.name}.defaults[{key!r}] is not a key"
        assert Draft202012Validator(fragment["properties"][key]).is_valid(value), (key, value)


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_registered_and_named_after_its_file(kind: type[MonitorType]) -> None:
    assert kind.name in registered_types("monitor")
    assert registry.get(kind.name) is kind
    assert kind.name == kind.__module__.rsplit(".", 1)[1]  # file name = type name
    assert not inspect.isabstract(kind)
    for op in ("begin", "check", "end"):
        assert list(inspect.signature(getattr(kind, op)).parameters) == ["self"]
    with pytest.raises(KeyError, match="known: "):
        registry.get("no-such-monitor-type")


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_class_attributes_are_consistent(kind: type[MonitorType]) -> None:
    assert kind.timings and set(kind.timings) <= {"always", "active"}
    assert len(set(kind.timings)) == len(kind.timings)
    assert kind.defaults.get("timing", "always") in kind.timings
    assert set(kind.defaults) <= {"interval", "timeout", "retry", "timing", "wait_start"}
    if kind.needs_target:
        assert kind.target_types, f"{kind.name} needs a target but names no resource type"
    assert kind.default_recovery in ("group", "resource", "local_server", "")
    if kind.default_recovery == "resource":
        assert kind.needs_target
    assert set(kind.recovery_defaults) <= RECOVERY_KEYS
    for item in ({}, {"action": "PANIC"}):
        found = kind.recovery_defaults_of(item)
        assert set(found) <= RECOVERY_KEYS
        assert found.get("final_action", "none") in FINAL_ACTIONS
    assert isinstance(kind.polled, bool) and isinstance(kind.pseudo_failure, bool)
    item = {"interval": 7, "timeout": 11, "use_heartbeat": False}
    assert kind.timing_of(item, {"interval": 3, "timeout": 90}) == (7.0, 11.0)
    for key, script in kind.scripts({"type": kind.name}):
        assert key in _props(kind) and isinstance(script, str)


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_a_minimal_monitor_is_clean_and_gets_every_default(kind: type[MonitorType],
                                                           tmp_path: Path) -> None:
    data, issues = check_data(_conf(kind, tmp_path))
    assert _errors(issues) == []
    filled = data["monitors"]["m"]
    for name, prop in _props(kind).items():
        if "default" in prop:
            assert name in filled, name
    assert filled["timing"] in kind.timings
    cfg = build_model(data, tmp_path)
    mc = cfg.monitor("m")
    assert mc.recovery.kind in TARGET_KINDS
    assert mc.recovery.final_action in FINAL_ACTIONS
    assert set(mc.params) == {k for k in filled if k not in COMMON}
    # an unknown parameter and a wrong timing are errors, never a crash
    text = _conf(kind, tmp_path).replace("  m:\n", "  m:\n    clp_no_such_key: 1\n", 1)
    assert any("unknown parameter 'clp_no_such_key'" in e
               for e in _errors(check_data(text)[1]))
    if len(kind.timings) == 1:
        wrong = "active" if kind.timings == ("always",) else "always"
        text = _conf(kind, tmp_path).replace("  m:\n", f"  m:\n    timing: {wrong}\n", 1)
        assert any("this monitor type can monitor only" in e
                   for e in _errors(check_data(text)[1]))


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_a_recovery_target_is_always_known(kind: type[MonitorType], tmp_path: Path) -> None:
    """No recovery target in clp.conf and no target resource: either the type's default
    recovery target is known, or the configuration is rejected."""
    data, issues = check_data(_conf(kind, tmp_path, recovery=False, target=kind.needs_target))
    if _errors(issues):
        return
    mc = build_model(data, tmp_path).monitor("m")
    assert mc.recovery.kind in TARGET_KINDS and mc.recovery.target


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_built_from_defaults_it_checks(kind: type[MonitorType], tmp_path: Path) -> None:
    """An instance of the loaded configuration begins, checks and ends here without harm
    (loopback ping, this machine's lo and processes, a file under tmp) and returns a Check."""
    (tmp_path / "disk.img").write_bytes(b"\1" * 8192)
    root = InstallRoot(tmp_path / "root")
    data, issues = check_data(_conf(kind, tmp_path))
    assert _errors(issues) == []
    cfg = build_model(data, tmp_path)
    mc = cfg.monitor("m")
    ctx = MonitorContext(cfg.name, "s1", mc.name, mc.target, root, cfg,
                         logging.getLogger("contract"), mc.interval, min(mc.timeout, 5),
                         lambda: {"userw": "Normal"})
    monitor = kind(mc.params, ctx)
    try:
        monitor.begin()
        result = monitor.check()
    finally:
        monitor.end()
    assert isinstance(result, Check)
    assert result.health in (Health.NORMAL, Health.CAUTION, Health.ERROR), result
    assert not result.timed_out and isinstance(result.reason, str)
    if kind.name in ("dummy", "diskw", "ipw", "miiw", "mrw", "mtw", "psw", "userw"):
        assert result.health is Health.NORMAL, result
    elif kind.name in ("fipw", "genw", "pidw"):  # 198.18.0.12 is not here; no script; no pid
        assert result.health is Health.ERROR, result
