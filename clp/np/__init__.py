"""Network partition resolvers: one module per ``type`` of clp.conf's ``network_partition``.

Each module has ``async def probe(...) -> bool`` (True: the target answered) and ``budget(...)``
(the worst-case seconds of one probe, which sets how long a lost server's groups wait, see
``clp.core.partition``). The service runs them (``clp.clusterd.resolution``).
"""
