"""The witness: a small HTTP service outside the cluster that relays heartbeat records.

Every server of a cluster POSTs its latest heartbeat record and gets back the latest record of
every server of its cluster, with how long ago the witness received each. The witness never holds
a cluster key: the servers verify every record themselves (``clp.heartbeat.witnesshb``). See
docs/witness.md for the protocol and the trust model.
"""

from clp.witness.wire import DEFAULT_PORT

__all__ = ["DEFAULT_PORT"]
