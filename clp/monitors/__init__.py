"""Monitor resources: one file per type (``ipw.py`` for ``type: ipw``), a registry and a runner."""
