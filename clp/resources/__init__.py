"""Group resources: one file per type (``exec.py`` for ``type: exec``), a registry and a runner."""
