"""Read clp.conf YAML keeping the line of every key and list item, and refusing duplicate keys.

PyYAML's constructors forget where values came from and silently keep the last of two equal keys.
A configuration checker must point at the line to fix and must not hide a duplicated server or
parameter, so we compose the node tree ourselves and build plain Python values from it.
"""

from __future__ import annotations

from typing import Any

import yaml

from clp.config.issues import ConfigIssue, join_path

LineMap = dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader used only for composing nodes and constructing scalars."""


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Builder:
    """Turns a composed node tree into dicts/lists/scalars, recording lines and issues."""

    def __init__(self, loader: _LineLoader) -> None:
        self.loader = loader
        self.lines: LineMap = {}
        self.issues: list[ConfigIssue] = []

    def build(self, node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = join_path(path, index)
                self.lines[child] = _line(item)
                items.append(self.build(item, child))
            return items
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: str) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolve "<<" merge keys like PyYAML does
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # `yes:` or `1:` would silently become a bool/int key; make the user quote it
                self.issues.append(
                    ConfigIssue(
                        join_path(path, str(key)),
                        f"key {key!r} is not a string (quote it)",
                        _line(key_node),
                    )
                )
                key = str(key)
            child = join_path(path, key)
            if key in result:
                self.issues.append(
                    ConfigIssue(
                        child,
                        f"duplicate key '{key}' (first defined at line {self.lines[child]})",
                        _line(key_node),
                    )
                )
                continue  # keep the first definition; the error makes the file invalid anyway
            self.lines[child] = _line(key_node)
            result[key] = self.build(value_node, child)
        return result


def load_yaml(text: str) -> tuple[Any, LineMap, list[ConfigIssue]]:
    """Parse YAML text into (data, line map, issues). Syntax errors raise ``yaml.YAMLError``."""
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, []
        builder = _Builder(loader)
        data = builder.build(node, "")
        return data, builder.lines, builder.issues
    finally:
        loader.dispose()


def line_of(lines: LineMap, path: str) -> int | None:
    """Line of ``path``, or of its nearest ancestor present in the file (for missing keys)."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None  # the whole file: no single line to point at
