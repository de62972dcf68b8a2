"""The one seam between clp and the operating system (addresses, mounts, processes, power).

``current()`` picks the implementation for this machine; tests pass a fake or a specific one.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clp.platform.linux import LinuxPlatform


@functools.cache
def current() -> LinuxPlatform:
    """``SolarisPlatform`` on Solaris/illumos (sys.platform 'sunos5'), else ``LinuxPlatform``."""
    if sys.platform.startswith("sunos"):
        from clp.platform.solaris import SolarisPlatform

        return SolarisPlatform()
    from clp.platform.linux import LinuxPlatform

    return LinuxPlatform()
