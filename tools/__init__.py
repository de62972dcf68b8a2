"""Build and install helpers run from the repository (``python3 -m tools.install``)."""
