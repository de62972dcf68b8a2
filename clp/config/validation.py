"""Schema validation of clp.conf data: defaults, format checks, and readable messages.

jsonschema's own messages ("'x' is not a 'ip-address'") are written for schema authors; users of
clpcfchk get product-toned sentences instead, and every error carries the path of the exact key
to fix so that its clp.conf line can be found.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from clp.config.issues import ConfigIssue, join_path
from clp.config.registry import build_schema
from clp.net.hostport import split_host_port

FORMATS = FormatChecker(formats=())


def is_ip_address(value: object) -> bool:
    if not isinstance(value, str):
        return True  # "type" reports the wrong type; one error per mistake
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_host_port(value: object) -> bool:
    """``host:port`` or ``[v6]:port``, as the WebUI's target host / service port pair."""
    if not isinstance(value, str):
        return True
    try:
        split_host_port(value)
    except ValueError:
        return False
    return True


def _ping_target_error(value: object) -> str | None:
    from clp.np.ping import parse_target
    try:
        parse_target(str(value))
    except ValueError as e:
        return str(e)
    return None


def is_ping_target(value: object) -> bool:
    """An IP address a ping can reach: IPv6 link-local only with its interface (fe80::1%eth0)."""
    return not isinstance(value, str) or _ping_target_error(value) is None


FORMATS.checks("ip-address")(is_ip_address)
FORMATS.checks("ping-target")(is_ping_target)
FORMATS.checks("host-port")(is_host_port)


def _address_message(value: object) -> str:
    kind = "IPv6" if isinstance(value, str) and ":" in value else "IPv4"
    return f"{value!r} is not an {kind} address"


_FORMAT_MESSAGES = {
    "ip-address": _address_message,
    "ping-target": lambda v: (_address_message(v) if not is_ip_address(v)
                              else _ping_target_error(v) or f"{v!r} is not a ping target"),
    "host-port": lambda v: f"{v!r} is not host:port (for example 198.18.0.250:80)",
}
_SIMPLE_MESSAGES = {
    "exclusiveMinimum": "must be greater than {limit} (got {value!r})",
    "minimum": "must be at least {limit} (got {value!r})",
    "maximum": "must be at most {limit} (got {value!r})",
    "minItems": "needs at least {limit} item(s)",
    "uniqueItems": "has duplicate items",
}
_TYPE_NAMES = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "empty",
}


def fill_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    """Insert the schema's ``default`` values, in place, where the instance leaves them out.

    Follows properties, additionalProperties, items and if/then branches (the typed unions), so
    defaults of a plugin's fragment apply to items of that type only.
    """
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                fill_defaults(sub, instance[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, value in instance.items():
                if key not in schema.get("properties", {}):
                    fill_defaults(extra, value)
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        for item in instance:
            fill_defaults(schema["items"], item)
    for branch in schema.get("allOf", []):
        if "if" in branch and "then" in branch:
            if Draft202012Validator(branch["if"]).is_valid(instance):
                fill_defaults(branch["then"], instance)
        else:
            fill_defaults(branch, instance)


def _path(error: jsonschema.ValidationError) -> str:
    path = ""
    for key in error.absolute_path:
        path = join_path(path, key)
    return path


def _message(error: jsonschema.ValidationError) -> str:
    """A product-toned sentence for one failing keyword."""
    value, kind, limit = error.instance, error.validator, error.validator_value
    custom = error.schema.get("x-error", {}) if isinstance(error.schema, Mapping) else {}
    if kind in custom:
        return str(custom[kind]).format(value=value)
    if kind == "format" and limit in _FORMAT_MESSAGES:
        return _FORMAT_MESSAGES[limit](value)
    if kind == "enum":
        return f"{value!r} is not one of: {', '.join(map(str, limit))}"
    if kind == "type":
        names = [limit] if isinstance(limit, str) else list(limit)
        return f"{value!r} is not " + " or ".join(_TYPE_NAMES.get(n, n) for n in names)
    simple = _SIMPLE_MESSAGES.get(str(kind))
    return simple.format(value=value, limit=limit) if simple else error.message


def _issues_of(error: jsonschema.ValidationError) -> Iterator[ConfigIssue]:
    path = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {})
        for key in error.instance:
            if key not in known:
                yield ConfigIssue(join_path(path, key), f"unknown parameter '{key}'")
        return
    if error.validator == "required":
        missing = error.message.split(" is a required property")[0].strip("'\"")
        yield ConfigIssue(path, f"required parameter '{missing}' is missing")
        return
    if error.validator == "const":
        return  # a type branch that does not apply: the enum on `type` reports unknown types
    yield ConfigIssue(path, _message(error))


def schema_issues(data: Any) -> list[ConfigIssue]:
    """Every schema error of ``data`` (defaults already filled); lines are added by the caller."""
    validator = Draft202012Validator(build_schema(), format_checker=FORMATS)
    seen: set[tuple[str, str]] = set()
    issues: list[ConfigIssue] = []
    for error in validator.iter_errors(data):
        for issue in _issues_of(error):
            if (issue.path, issue.message) not in seen:
                seen.add((issue.path, issue.message))
                issues.append(issue)
    return issues
