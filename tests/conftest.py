"""Session-wide safety for every test: power actions are refused.

A final action (stop_cluster_service_and_shutdown, panic) reached by a test would otherwise power
off or panic the machine running the tests. Lab servers must not inherit this (the lab strips
CLP_NO_POWER from its servers' environment so their power actions reach the lab init).
"""

from __future__ import annotations

import os

os.environ["CLP_NO_POWER"] = "1"
