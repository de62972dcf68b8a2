"""Every registered resource type passes the same checks (DESIGN.md section 5)."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from clp.config import build_schema, registered_types
from clp.config.group_schema import DEFAULT_DEPENDS
from clp.config.validation import fill_defaults
from clp.paths import InstallRoot
from clp.resources import registry
from clp.resources.base import Context, ResourceType

TYPES = registry.all_types()
IDS = [t.name for t in TYPES]


def _walk(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(schema.get("properties", {}).items())


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_schema_is_a_valid_fragment_with_defaults(kind: ResourceType) -> None:
    schema = kind.schema
    Draft202012Validator.check_schema(schema)
    assert schema.get("type") == "object"
    required = set(schema.get("required", []))
    assert required <= set(schema["properties"])
    for name, prop in _walk(schema):
        assert "x-apply" in prop, f"{kind.name}.{name} does not say how a change is applied"
        if name not in required:
            assert "default" in prop, f"optional {kind.name}.{name} has no default"
        assert name not in {"type", "depends", "activation", "deactivation"}


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_operations_exist(kind: ResourceType) -> None:
    for op in ("start", "stop", "probe"):
        method = getattr(kind, op)
        assert callable(method)
        assert list(inspect.signature(method).parameters) == ["params", "ctx"]
    assert not inspect.isabstract(type(kind))
    assert registry.get(kind.name) is kind
    assert kind.name == type(kind).__module__.rsplit(".", 1)[1]  # file name = type name


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_registered_in_the_config_schema(kind: ResourceType) -> None:
    assert kind.name in registered_types("resource")
    item: dict[str, Any] = {"type": kind.name}
    for name in kind.schema.get("required", []):
        item[name] = {"ip": "198.18.0.12", "device": "/dev/x", "mount_point": "/mnt/x"}[name]
    data: dict[str, Any] = {
        "cluster": {"name": "c"},
        "servers": {"s1": {}, "s2": {}},
        "interconnects": [{"type": "lan", "addresses": {"s1": "198.18.1.1", "s2": "198.18.1.2"}}],
        "groups": {"g": {"resources": {"r": item}}},
    }
    schema = build_schema()
    fill_defaults(schema, data)
    assert list(Draft202012Validator(schema).iter_errors(data)) == []
    filled = data["groups"]["g"]["resources"]["r"]
    for name, prop in _walk(kind.schema):
        if "default" in prop:
            assert name in filled
    assert filled["activation"]["final_action"] == "none"


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_default_dependencies_are_known(kind: ResourceType) -> None:
    if kind.name in DEFAULT_DEPENDS:
        assert set(DEFAULT_DEPENDS[kind.name]) <= set(DEFAULT_DEPENDS)


@pytest.mark.parametrize("kind", TYPES, ids=IDS)
def test_construction_is_safe(kind: ResourceType, tmp_path: Any) -> None:
    """A fresh instance does nothing on its own; probing a never-started dummy-safe resource
    answers without raising (fip/disk are probed read-only)."""
    again = type(kind)()
    root = InstallRoot(tmp_path)
    ctx = Context.for_group(cluster="c", server="s1", group="g", resource="r", event="START",
                            servers=("s1", "s2"), root=root, log=logging.getLogger("contract"))
    params = {n: p.get("default") for n, p in _walk(kind.schema)}
    params.update({"ip": "198.18.254.254", "device": "/dev/clp-no-such-device",
                   "mount_point": str(tmp_path / "mnt")})
    assert again.probe(params, ctx) in (True, False, None)
    assert again.probe(params, ctx) is not True
