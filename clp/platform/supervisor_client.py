"""Client of ``clpsupervise``'s control socket, for ``clp/platform/services.py`` and the lab.

One JSON line out, one back, one connection per request. A missing socket or a refused connection
means the supervisor is not running, which is reported as such instead of a bare ``ECONNREFUSED``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from clp.paths import InstallRoot

# a stop is answered once the service exited: up to the 10 s grace period, plus margin
REPLY_TIMEOUT = 30.0


class SupervisorError(Exception):
    pass


class SupervisorNotRunning(SupervisorError):
    pass


class SupervisorClient:
    def __init__(self, root: InstallRoot, timeout: float = REPLY_TIMEOUT) -> None:
        self.root = root
        self.timeout = timeout

    def start(self, name: str) -> dict[str, Any]:
        return self.request("start", name)

    def stop(self, name: str) -> dict[str, Any]:
        return self.request("stop", name)

    def restart(self, name: str) -> dict[str, Any]:
        return self.request("restart", name)

    def status(self) -> dict[str, Any]:
        """``{"ok", "message", "services": {name: {"state", "pid", "restarts", "since"}}}``."""
        return self.request("status", None)

    def request(self, op: str, service: str | None) -> dict[str, Any]:
        path = self.root.supervisor_socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(str(path))
            except (FileNotFoundError, ConnectionRefusedError):
                raise SupervisorNotRunning(
                    f"clpsupervise is not running (no listener on {path})") from None
            except OSError as e:
                raise SupervisorError(f"cannot reach clpsupervise at {path}: {e}") from None
            sock.sendall(json.dumps({"op": op, "service": service}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise SupervisorError(f"clpsupervise did not answer {op} within "
                                  f"{self.timeout:g} s") from None
        finally:
            sock.close()
        try:
            reply = json.loads(data)
        except ValueError:
            raise SupervisorError(f"clpsupervise closed the connection without a valid "
                                  f"answer to {op}") from None
        if not isinstance(reply, dict):
            raise SupervisorError(f"unexpected answer from clpsupervise: {reply!r}")
        return reply
