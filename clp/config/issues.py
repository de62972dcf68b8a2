"""What a configuration check finds, as data.

Every problem is collected as a ``ConfigIssue`` rather than raised on sight, so that a user fixing
``clp.conf`` sees all of them in one pass (as Patroni does) instead of one per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

CONFIG_FILE = "clp.conf"

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ConfigIssue:
    """One finding: where (dotted path and clp.conf line), what, and how bad."""

    path: str
    message: str
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        if self.line is not None:
            text += f" ({CONFIG_FILE}:{self.line})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "message": self.message,
            "line": self.line,
            "severity": self.severity,
        }


class ConfigError(Exception):
    """Raised when a configuration has errors.

    ``issues`` holds every error (only errors, so callers can print them all as such);
    ``warnings`` holds the warnings found in the same pass, for clpcfchk.
    """

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        found = list(issues)
        self.issues: list[ConfigIssue] = [i for i in found if i.severity == "error"]
        self.warnings: list[ConfigIssue] = [i for i in found if i.severity == "warning"]
        head = f"{len(self.issues)} error(s) in the cluster configuration"
        super().__init__("\n".join([head, *(f"  {i}" for i in self.issues)]))


def join_path(parent: str, key: str | int) -> str:
    """Dotted path of a child: ``interconnects[0].addresses.server1``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def sort_issues(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    """File order, so the report reads top to bottom like clp.conf itself."""
    return sorted(issues, key=lambda i: (i.line if i.line is not None else 0, i.path))
