"""The timeout ratio (``clptoratio``) as this server holds it.

The ratio multiplies every heartbeat timeout (:meth:`Membership.set_timeout_ratio`; the hang
fence reads the effective timeout too) until its end time, then falls back to 1 by itself. It is
kept in the install root's work directory so that a restart of ``clusterpro`` within the period
keeps it (a restarted service must not suddenly use a shorter timeout than its peers).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

from clp.control.protocol import Reply
from clp.core.membership import Membership
from clp.paths import InstallRoot

log = logging.getLogger("clp.nm")

MAX_RATIO = 10000
MAX_PERIOD = 30 * 86400.0  # seconds: the product's limit


class TimeoutRatio:
    def __init__(self, root: InstallRoot, membership: Membership) -> None:
        self.file = root.work_dir / "toratio.json"
        self.membership = membership
        self.until: float | None = None  # wall clock end of the period
        self._load()

    def _load(self) -> None:
        try:
            doc = json.loads(self.file.read_text())
            ratio, until = float(doc["ratio"]), float(doc["until"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring %s: %s", self.file, e)
            return
        if until > time.time() and math.isfinite(ratio) and 1 <= ratio <= MAX_RATIO:
            self.membership.set_timeout_ratio(ratio)
            self.until = until
            log.info("timeout ratio %g in force until %s (kept from before the restart)",
                     ratio, time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(until)))
        else:
            self.file.unlink(missing_ok=True)

    def _save(self, ratio: float, until: float | None) -> str | None:
        """Keep (ratio, until) for a restart, or forget it (``until`` None); the error, if any.
        Callers apply a change only once it is kept, so a restart never finds another one."""
        try:
            if until is None:
                self.file.unlink(missing_ok=True)
                return None
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"ratio": ratio, "until": until}) + "\n")
            os.replace(tmp, self.file)
        except OSError as e:
            return f"cannot write {self.file}: {e.strerror or e}"
        return None

    def _apply(self, ratio: float, until: float | None) -> None:
        self.membership.set_timeout_ratio(ratio)
        self.until = until

    def expire(self, now: float) -> None:
        """Called every heartbeat round: past its end the ratio is 1 again, kept or not (a
        file left behind names a past end and is ignored at the next start)."""
        if self.until is not None and now >= self.until:
            log.info("timeout ratio %g expired; heartbeat timeout back to %g s",
                     self.membership.ratio, self.membership.timeout / self.membership.ratio,
                     extra={"alert": True})
            self._apply(1.0, None)
            error = self._save(1.0, None)
            if error:
                log.warning("%s", error)

    def show(self) -> dict[str, Any]:
        return {"ratio": self.membership.ratio, "until": self.until,
                "timeout": self.membership.timeout}

    async def op(self, args: dict[str, Any]) -> Reply:
        """Control operation ``toratio``: ``{"show": true}``, ``{"reset": true}`` or
        ``{"ratio": R, "period": SECONDS}``."""
        if args.get("show"):
            return Reply(True, 0, "", self.show())
        if args.get("reset"):
            error = self._save(1.0, None)
            if error:
                return Reply(False, 9, f"the ratio was not reset: {error}")
            self._apply(1.0, None)
            log.info("timeout ratio reset to 1", extra={"alert": True})
            return Reply(True, 0, "", self.show())
        ratio, period = args.get("ratio"), args.get("period")
        if not (isinstance(ratio, int) and not isinstance(ratio, bool)
                and 1 <= ratio <= MAX_RATIO):
            return Reply(False, 2, f"ratio must be an integer from 1 to {MAX_RATIO}, "
                                   f"not {ratio!r}")
        if not (isinstance(period, (int, float)) and not isinstance(period, bool)
                and 0 < period <= MAX_PERIOD):
            return Reply(False, 2, f"period must be 1 second to 30 days, not {period!r}")
        until = time.time() + float(period)
        error = self._save(float(ratio), until)
        if error:
            return Reply(False, 9, f"the ratio was not changed: {error}")
        self._apply(float(ratio), until)
        log.info("timeout ratio set to %d until %s (heartbeat timeout %g s)", ratio,
                 time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(self.until)),
                 self.membership.timeout, extra={"alert": True})
        return Reply(True, 0, "", self.show())
