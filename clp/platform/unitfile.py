"""Reading the start command of a systemd unit file: ``ExecStart=`` and ``Environment=``.

The installer checks that a unit's program is installed before enabling it, and the lab runs an
installed tree's services with exactly these command lines (``clplab up --installed``), so what
the units say is what the lab proves. Only what our units use is understood: one ``ExecStart=``
in ``[Service]`` (its systemd prefixes ``-@:+!`` dropped) and any number of ``Environment=``
lines of ``NAME=VALUE`` words, quoted as systemd quotes them.
"""

from __future__ import annotations

import shlex
from typing import NamedTuple


class UnitError(Exception):
    pass


class StartCommand(NamedTuple):
    argv: list[str]
    environment: dict[str, str]

    def shell_words(self) -> list[str]:
        """As one command line: ``env NAME=VALUE ... PROGRAM ARGS`` (``env`` only if needed)."""
        if not self.environment:
            return list(self.argv)
        return ["env", *(f"{k}={v}" for k, v in self.environment.items()), *self.argv]


def service_section(text: str) -> list[tuple[str, str]]:
    """The ``key=value`` lines of ``[Service]``, continuation lines joined, comments dropped."""
    section, lines, pending = None, [], ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, _, value = line.partition("=")
            lines.append((key.strip(), value.strip()))
    return lines


def start_command(text: str, name: str = "unit") -> StartCommand:
    """``ExecStart`` as an argv and the ``Environment`` it runs with; UnitError when missing."""
    starts = [v for k, v in service_section(text) if k == "ExecStart" and v]
    if len(starts) != 1:
        raise UnitError(f"{name}: expected one ExecStart= in [Service], found {len(starts)}")
    argv = shlex.split(starts[0].lstrip("-@:+!"))
    if not argv or not argv[0].startswith("/"):
        raise UnitError(f"{name}: ExecStart= must name a program by absolute path: {starts[0]!r}")
    env: dict[str, str] = {}
    for key, value in service_section(text):
        if key == "Environment":
            for word in shlex.split(value):
                var, sep, val = word.partition("=")
                if not sep or not var:
                    raise UnitError(f"{name}: Environment= word {word!r} is not NAME=VALUE")
                env[var] = val
    return StartCommand(argv, env)
