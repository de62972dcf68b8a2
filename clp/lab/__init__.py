"""``clplab``: an N-server clp cluster on one Linux machine, with faults (DESIGN section 9)."""

from clp.lab.lab import Lab
from clp.lab.netns import LabError

__all__ = ["Lab", "LabError"]
