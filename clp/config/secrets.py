"""Secrets in clp.conf (SMTP passwords, SNMPv3 pass phrases, communities, any later monitor's
password), found by their key wherever they are, and masked where a configuration is shown:
a reflect plan (clpcfctrl), a collected copy (clplogcc)."""

from __future__ import annotations

import re
from typing import Any

from clp.config.issues import join_path

SECRET_KEY = re.compile(r"password|passphrase|passwd|secret|community|token|credential", re.I)
MASK = "********"


def mask_secrets(node: Any, key: str = "", path: str = "",
                 found: list[str] | None = None) -> Any:
    """``node`` (the value at ``path``, under ``key``) with every secret replaced by
    :data:`MASK`: a value under a secret key, a list too, whole. ``found`` collects the paths
    masked."""
    if isinstance(node, dict):
        return {k: mask_secrets(v, str(k), join_path(path, str(k)), found)
                for k, v in node.items()}
    if node is not None and SECRET_KEY.search(key):
        if found is not None:
            found.append(path)
        return MASK
    if isinstance(node, list):
        return [mask_secrets(v, key, join_path(path, i), found) for i, v in enumerate(node)]
    return node
