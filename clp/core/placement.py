"""Where a failover group should run: its failover policy, filtered by the exclusive attribute.

Pure. The failover policy is the group's ``servers`` list (highest priority first). A candidate is
a server of that list that is online (the caller also leaves out servers the group must not go
to, such as servers that failed to start it in this round).

The failover exclusive attribute (the product's フェイルオーバ排他属性) relates groups that carry
the same attribute, never groups of different attributes:

- ``off``: no restriction; the highest-priority candidate.
- ``normal``: prefer a candidate where no other ``normal`` group is active; if every candidate
  already runs one, take the highest-priority candidate anyway (the group still starts).
- ``absolute``: never a server where another ``absolute`` group is active; if every candidate runs
  one, the group does not start (``None``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

EXCLUSIVE_ATTRIBUTES = ("off", "normal", "absolute")


class PlacedGroup(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def servers(self) -> tuple[str, ...]: ...


def busy_with(group: str, server: str, attribute: str, active: Mapping[str, str],
              exclusive: Mapping[str, str]) -> list[str]:
    """Other groups with the same exclusive attribute active on ``server``."""
    return sorted(g for g, s in active.items()
                  if s == server and g != group and exclusive.get(g, "off") == attribute)


def target_server(group: PlacedGroup, online: Collection[str], active: Mapping[str, str],
                  exclusive: Mapping[str, str]) -> tuple[str | None, str]:
    """The server ``group`` should run on, and why (one line)."""
    candidates = [s for s in group.servers if s in online]
    if not candidates:
        return None, f"no server of {group.name}'s policy ({', '.join(group.servers)}) is online"
    attribute = exclusive.get(group.name, "off")
    if attribute not in EXCLUSIVE_ATTRIBUTES:
        raise ValueError(f"group {group.name}: unknown exclusive attribute {attribute!r}")
    first = candidates[0]
    if attribute == "off":
        return first, f"{first} is the highest-priority online server of {group.name}'s policy"
    for server in candidates:
        if not busy_with(group.name, server, attribute, active, exclusive):
            if server == first:
                return server, (f"{server} is the highest-priority online server of "
                                f"{group.name}'s policy and runs no other {attribute}-exclusive "
                                f"group")
            skipped = ", ".join(
                f"{s} runs {'/'.join(busy_with(group.name, s, attribute, active, exclusive))}"
                for s in candidates[:candidates.index(server)])
            return server, (f"{server} is the highest-priority online server of {group.name}'s "
                            f"policy free of {attribute}-exclusive groups ({skipped})")
    if attribute == "normal":
        return first, (f"every online server of {group.name}'s policy runs a normal-exclusive "
                       f"group; {first} is the highest-priority one")
    return None, (f"every online server of {group.name}'s policy runs another absolute-exclusive "
                  f"group")
