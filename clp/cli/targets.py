"""Runs a command's operation on this server or, through ``clusterpro_trn``, on another one.

``-h HOST`` names a server of clp.conf; ``-a`` means every server. Another server is reached on its
interconnect addresses in priority order, so a command still works when one interconnect is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clp.config import ClusterConfig, ConfigError, load_config
from clp.control import client as control
from clp.keys import KeyFileError, load_key
from clp.net import frames
from clp.paths import InstallRoot
from clp.platform.services import ServiceError, service_manager


class TargetError(Exception):
    def __init__(self, code: int, message: str, product: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.product = product  # the product's sentence, when it is not the code's usual one


@dataclass
class Outcome:
    ok: bool
    code: int
    message: str
    data: dict[str, Any]


class ClusterTargets:
    def __init__(self, root: InstallRoot) -> None:
        from clp.cli.common import Code
        from clp.clusterd.service import local_server_name

        self.root = root
        try:
            self.config: ClusterConfig = load_config(root.config_dir)
            self.key = load_key(root.key_file)
        except ConfigError as e:
            raise TargetError(Code.INVALID_CONFIG, "\n".join(map(str, e.issues))) from None
        except KeyFileError as e:
            raise TargetError(Code.INVALID_CONFIG, str(e)) from None
        try:
            self.me = local_server_name(self.config)
        except SystemExit as e:  # this machine is not a server of the configuration
            raise TargetError(Code.INVALID_CONFIG, str(e)) from None

    def select(self, all_servers: bool, host: str | None) -> list[str]:
        from clp.cli.common import INVALID_NAME, Code

        if all_servers and host:
            raise TargetError(Code.INVALID_OPTION, "-a and -h cannot be used together.")
        if all_servers:
            return list(self.config.server_names)
        if host:
            if host not in self.config.server_names:
                raise TargetError(Code.INVALID_OPTION,
                                  f"{host} is not a server of cluster {self.config.name}.",
                                  INVALID_NAME["server"])
            return [host]
        return [self.me]

    def control(self, server: str, op: str, args: dict[str, Any] | None = None,
                timeout: float = 30.0) -> Outcome:
        """Run a control operation on ``server``; ``timeout`` bounds how long it may take."""
        if server == self.me:
            try:
                r = control.call(self.root.control_socket, op, args, timeout=timeout)
            except control.NotRunning:
                return Outcome(False, 5, "The cluster service is not running.", {})
            except TimeoutError:
                return Outcome(False, 11, f"No answer from the cluster service within "
                               f"{timeout:g} s.", {})
            return Outcome(r.ok, r.code, r.message, r.data)
        return self._remote(server, "control", {"op": op, "args": args or {}, "timeout": timeout},
                            timeout + 5)

    def service(self, server: str, action: str, name: str = "clusterpro") -> Outcome:
        """Start or stop (restart: stop, then start) service ``name`` on ``server``."""
        if action == "restart":
            out = self.service(server, "stop", name)
            return self.service(server, "start", name) if out.ok else out
        if server == self.me:
            try:
                getattr(service_manager(self.root), action)(name)
            except ServiceError as e:
                return Outcome(False, 11, f"{e}", {})
            return Outcome(True, 0, "", {})
        return self._remote(server, "service", {"action": action, "service": name})

    def _remote(self, server: str, op: str, args: dict[str, Any],
                timeout: float = 30.0) -> Outcome:
        request = frames.new_request(self.config.name, self.me, op, args)
        errors = []
        for ic in self.config.interconnects:
            address = ic.addresses.get(server) if ic.type == "lan" else None
            if not address:
                continue
            try:
                r = frames.call(address, self.config.ports.transfer, self.key, request,
                                timeout=timeout)
            except (OSError, frames.FrameError) as e:
                errors.append(f"{address}: {e}")
                continue
            return Outcome(bool(r.get("ok")), int(r.get("code", 11)), str(r.get("message", "")),
                           dict(r.get("data") or {}))
        return Outcome(False, 7, f"Could not connect to {server} ({'; '.join(errors)}).", {})
