"""mrw (external linkage monitor): an error reported from outside the cluster software.

Nothing is checked at an interval: an mrw is Normal until a notice of its ``category`` (and,
when set, its ``keyword``) arrives with an error, then it is in Error and its recovery runs as
for any monitor; a notice that clears it (or a suspend and resume of it) makes it Normal again.
Notices come through the control API (``mrw_notice``: root on the server itself, or another
server of the cluster through ``clusterpro_trn``, authenticated by the cluster key), which the
product's ``clprexec --notice`` / ``--clear`` use. Every notice is an alert-log record.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from clp.monitors.base import Check, MonitorType, normal

A = "suspend_monitors"
WORD = "^[A-Za-z0-9_.-]{1,31}$"


class MessageMonitor(MonitorType):
    name: ClassVar[str] = "mrw"
    schema: ClassVar[dict[str, Any]] = {
        "required": ["category"],
        "properties": {
            "category": {"type": "string", "pattern": WORD, "x-apply": A,
                         "x-error": {"pattern": "{value!r}: up to 31 letters, digits, '_', "
                                                "'.' or '-'"}},
            # None: a notice of the category with any keyword
            "keyword": {"type": ["string", "null"], "pattern": WORD, "default": None,
                        "x-apply": A,
                        "x-error": {"pattern": "{value!r}: up to 31 letters, digits, '_', "
                                               "'.' or '-'"}},
        },
    }
    defaults: ClassVar[dict[str, Any]] = {"interval": 10, "timeout": 30, "retry": 0}
    timings: ClassVar[tuple[str, ...]] = ("always",)
    default_recovery: ClassVar[str] = ""
    polled: ClassVar[bool] = False
    pseudo_failure: ClassVar[bool] = False

    def matches(self, category: str, keyword: str | None) -> bool:
        """Whether a notice of ``category`` (and ``keyword``) is for this monitor."""
        if category != self.params["category"]:
            return False
        mine = self.params.get("keyword")
        return mine is None or keyword == mine

    def check(self) -> Check:
        return normal()


NOTICE_WORD = re.compile(WORD)
