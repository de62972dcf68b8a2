"""An N-server clp cluster on one Linux machine (DESIGN section 9), and its faults.

Each server is a named network namespace ``<lab>-<server>`` (eth0 on the public bridge, eth1 on
the interconnect bridge) plus, per boot, fresh pid, mount, ipc and uts namespaces whose pid 1 is
:mod:`clp.lab.init`. Its install root lives on the host at ``/var/lib/clplab/<lab>/<server>/root``
and appears inside at the product's path. What the lab built is recorded in
``/run/clplab/<lab>/lab.json``; whether a server runs is read from ``/proc``, never trusted from
the file. :meth:`Lab.cleanup_all` finds everything again without the file, so a failed test or a
killed ``clplab`` never leaves namespaces, links, loop devices or processes behind.

Besides the servers a lab has shared disks (:mod:`clp.lab.shared_disk`, ``/dev/lab/disk<n>`` in
every server, each server through its own path that can hang or fail alone: :meth:`Lab.disk_path`)
and a client namespace ``<lab>-client`` on both LANs (198.18.0.200, 198.18.1.200)
from which tests reach the cluster's floating IPs as a user would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

import clp
from clp.config.lab import MAX_SERVERS, MIN_SERVERS, ROUTER_USES, generate_lab_config, lab_needs
from clp.evt.sender import MAX_MESSAGE
from clp.keys import write_arbiter_key, write_new_key
from clp.lab import com_cable, hb_disk, installed, shared_disk, teardown, watchdog
from clp.lab import netns as nx
from clp.lab import router as lab_router
from clp.lab.faults import Faults
from clp.lab.init import MQUEUE_MSG_MAX
from clp.lab.netns import LINKS, RUN_DIR, VAR_DIR, LabError
from clp.lab.probes import Probes, communicate
from clp.paths import DEFAULT_ROOT, InstallRoot
from clp.platform.supervisor_client import SupervisorClient, SupervisorError

NAME_RE = re.compile(r"^[a-z0-9]{1,8}$")
BOOT_WAIT = 20.0
STOP_WAIT = 5.0
MAX_DISKS = 4
UNSHARE = ["unshare", "--mount", "--pid", "--ipc", "--uts", "--fork", "--mount-proc",
           "--propagation", "private"]


def mq_depth(n_servers: int) -> int:
    """The depth of each lab server's evt queue (fs.mqueue.msg_max in its ipc namespace).

    Every lab server runs as root, and RLIMIT_MSGQUEUE is one budget per user, not per machine:
    left alone, the first servers take the deep queues and the last cannot create one at all. So
    each server gets its share (one share spare for the host's own tests): the product's queue
    shapes (clp.evt.sender) then settle on 8 KiB messages at that depth (a short queue drops and
    counts records in a burst; it never blocks a service).
    """
    budget = resource.getrlimit(resource.RLIMIT_MSGQUEUE)[0]
    if budget == resource.RLIM_INFINITY:
        return MQUEUE_MSG_MAX
    per_message = MAX_MESSAGE * 3 // 2 + 64  # what the kernel charges per message (measured)
    return max(1, min(MQUEUE_MSG_MAX, budget // (n_servers + 1) // per_message))


def _bin_dir() -> Path:
    here = Path(sys.executable).parent
    if (here / "clpsupervise").exists():
        return here
    found = shutil.which("clpsupervise")
    if found is None:
        raise LabError("clpsupervise is not installed (pip install -e . in the venv)")
    return Path(found).parent


def _check_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (namespaces, bridges, nftables)")


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise LabError(f"lab name {name!r}: 1 to 8 characters of a-z and 0-9")


class Lab(Faults, Probes):
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.name: str = doc["name"]
        self.servers: list[str] = list(doc["servers"])

    # creation and lookup
    @classmethod
    def up(cls, name: str = "clp", n: int = 2, config_dir: Path | None = None,
           interval: float = 1.0, timeout: float = 10.0,
           services: list[str] | None = None, disks: int = 1, client: bool = True,
           diskhb: bool = False, com: bool = False, router: bool = False,
           router_uses: tuple[str, ...] = (), installed_tree: Path | None = None) -> Lab:
        """``installed_tree``: the servers run that installation (clp.lab.installed), not the
        repository."""
        _check_root()
        _check_name(name)
        if not MIN_SERVERS <= n <= MAX_SERVERS:
            raise LabError(f"a lab has {MIN_SERVERS} to {MAX_SERVERS} servers, not {n}")
        if not 0 <= disks <= MAX_DISKS:
            raise LabError(f"a lab has 0 to {MAX_DISKS} shared disks, not {disks}")
        if (RUN_DIR / name).exists() or any(ns.startswith(f"{name}-") for ns in nx.netns_list()):
            raise LabError(f"lab {name!r} is already up (clplab --name {name} down removes it)")
        conf = cls._config_text(config_dir, n, interval, timeout, diskhb, com, name,
                                router_uses)
        if config_dir is not None:  # a given config says what the lab must provide
            needs = lab_needs(conf)
            diskhb, com, router = diskhb or needs["diskhb"], com or needs["com"], \
                router or needs["router"]
        bindir = _bin_dir()
        if installed_tree is not None:
            installed_tree = installed.check(installed_tree)
            services = services or installed.service_specs(installed_tree)
        doc = {"name": name, "servers": [f"server{i}" for i in range(1, n + 1)],
               "services": services, "bin": str(bindir), "python": sys.executable,
               "repo": str(Path(clp.__file__).resolve().parent.parent), "created": time.time(),
               "config_dir": str(config_dir) if config_dir else None,
               "nodes": {}, "unplugged": [], "hung": [], "partition": None, "disks": [],
               "client": client, "router": router or bool(router_uses),
               "installed": str(installed_tree) if installed_tree else None}
        lab = cls(doc)
        try:
            (RUN_DIR / name).mkdir(parents=True, mode=0o700)
            lab._save()
            lab._install(conf, config_dir, services)
            lab._make_disks(disks)
            if diskhb:  # per-server loop devices of one file: /dev/lab/diskhb1
                teardown.make_host_dir(shared_disk.LAB_DEV_DIR)
                hb_disk.make(lab)
            lab._wire()
            if com:  # a socat pty pair; /dev/lab/comhb1 in server1 and server2
                teardown.make_host_dir(shared_disk.LAB_DEV_DIR)
                com_cable.install(lab)
            if doc["router"]:  # <lab>-router: 198.18.0.254 / 198.18.1.254, clpwitnessd :29005
                lab_router.install(lab)
            if watchdog.wanted(conf):  # a watchdog per server, kept outside it
                doc["watchdog"] = {"pid": watchdog.start(doc)}
                lab._save()
            for server in lab.servers:
                lab._boot(server)
            for server in lab.servers:
                lab._wait_ready(server)
        except BaseException:
            cls.cleanup_all(name)
            raise
        return lab

    @staticmethod
    def _config_text(config_dir: Path | None, n: int, interval: float, timeout: float,
                     diskhb: bool = False, com: bool = False, name: str = "clp",
                     router_uses: tuple[str, ...] = ()) -> str:
        """``router_uses``: witness, ping, http: a generated config uses the lab's router so."""
        unknown = sorted(set(router_uses) - set(ROUTER_USES))
        if unknown:
            raise LabError(f"the router can be used for {', '.join(ROUTER_USES)}, not {unknown}")
        if config_dir is None:
            return generate_lab_config(n, interval, timeout, diskhb=diskhb, com=com,
                                       **{use: True for use in router_uses})
        path = Path(config_dir) / "clp.conf"
        if not path.is_file():
            raise LabError(f"{config_dir}: no clp.conf in it")
        text = path.read_text()
        try:
            servers = list((yaml.safe_load(text) or {}).get("servers") or [])
        except (yaml.YAMLError, AttributeError):
            servers = []  # clpcfchk reports a broken file; the lab only needs the names
        expected = [f"server{i}" for i in range(1, n + 1)]
        if servers and servers != expected:
            raise LabError(f"{path} names servers {', '.join(map(str, servers))}; a lab of {n} "
                           f"servers needs {', '.join(expected)}")
        return text

    @classmethod
    def load(cls, name: str) -> Lab:
        _check_name(name)
        path = RUN_DIR / name / "lab.json"
        try:
            return cls(json.loads(path.read_text()))
        except FileNotFoundError:
            raise LabError(f"lab {name!r} is not up (no {path})") from None
        except (OSError, ValueError, KeyError) as e:
            raise LabError(f"lab {name!r}: {path} is unreadable ({e}); "
                           f"'clplab --name {name} down' removes what is left") from None

    def _save(self) -> None:
        path = RUN_DIR / self.name / "lab.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=2) + "\n")
        tmp.replace(path)

    # building
    def _install(self, conf: str, config_dir: Path | None, services: list[str] | None) -> None:
        key = VAR_DIR / self.name / "cluster.key"
        write_arbiter_key(lab_router.arbiter_key_path(self.name), write_new_key(key))
        try:
            cluster = (yaml.safe_load(conf) or {}).get("cluster", {}).get("name")
        except (yaml.YAMLError, AttributeError):
            cluster = None  # clpcfchk reports a broken file
        self.doc["cluster"] = cluster if isinstance(cluster, str) else None
        self._save()
        for server in self.servers:
            root = InstallRoot(self.root_of(server))
            root.ensure_dirs()
            if self.doc.get("installed"):  # mount points of the installation's code
                for sub in installed.CODE_DIRS:
                    (root.root / sub).mkdir(exist_ok=True)
            if config_dir is not None:
                shutil.copytree(config_dir, root.config_dir, dirs_exist_ok=True)
            root.config_file.write_text(conf)
            shutil.copyfile(key, root.key_file)
            os.chmod(root.key_file, 0o600)
            if services is not None:
                for spec in services:
                    if "#" in spec or "\n" in spec:
                        raise LabError(f"service spec {spec!r}: no '#' or newline allowed")
                text = "# written by clplab: the services clpsupervise runs on this server\n"
                (root.config_dir / "services").write_text(text + "".join(
                    f"{s}\n" for s in services))
        teardown.make_host_dir(Path(DEFAULT_ROOT))

    def _make_disks(self, count: int) -> None:
        """Each disk's image, then the lab's disk path daemon and one loop device per server and
        disk (each recorded as soon as it exists, so a failure leaves none)."""
        if not count:
            return
        teardown.make_host_dir(shared_disk.LAB_DEV_DIR)
        for n in range(1, count + 1):
            self.doc["disks"].append(shared_disk.make_image(self.name, n))
            self._save()
        pid = shared_disk.start_daemon(self.name, self.doc["python"], self.doc["repo"],
                                       self.doc["disks"], self.servers)
        self.doc["diskpaths"] = {"pid": pid, "mount": str(shared_disk.paths_dir(self.name)),
                                 "control": str(shared_disk.control_path(self.name))}
        self._save()
        for disk in self.doc["disks"]:
            for server in self.servers:
                disk["paths"][server] = shared_disk.attach(self.name, server, disk["name"])
                self._save()

    def _disk(self, disk: str | int) -> dict[str, Any]:
        name = f"disk{disk}" if isinstance(disk, int) else disk
        for entry in self.doc.get("disks", []):
            if entry["name"] == name:
                return dict(entry)
        names = ", ".join(d["name"] for d in self.doc.get("disks", [])) or "none"
        raise LabError(f"lab {self.name!r} has no shared disk {name!r} (disks: {names})")

    def disk_device(self, server: str, n: int = 1) -> str:
        """The host's loop device behind ``/dev/lab/disk<n>`` in ``server`` (its own path)."""
        self.index(server)
        return str(self._disk(n)["paths"][server]["loop"])

    def disk_path(self, server: str, disk: str | int, mode: str) -> None:
        """``server``'s path to shared disk ``disk`` (``disk1`` or 1) works (``ok``), hangs (every
        I/O blocks: ``hang``) or fails (every I/O gets EIO, a hang's blocked I/O too: ``eio``);
        the other servers' paths are untouched. Returns once the daemon has applied it.
        A hung path is released with ``eio`` (``ok`` would let the held I/O through)."""
        self.index(server)
        path = shared_disk.path_name(server, self._disk(disk)["name"])
        shared_disk.set_mode(self.name, [path], mode)  # by hand: a restart leaves it so

    def disk_paths(self) -> dict[str, dict[str, dict[str, str]]]:
        """disk -> server -> {"loop", "mode"}; the modes as the daemon reports them now
        (``unknown`` when it does not answer)."""
        modes = shared_disk.modes(self.name) if self.doc.get("diskpaths") else {}
        found: dict[str, dict[str, dict[str, str]]] = {}
        for disk in self.doc.get("disks", []):
            found[disk["name"]] = {
                server: {"loop": path["loop"],
                         "mode": modes.get(shared_disk.path_name(server, disk["name"]), "unknown")}
                for server, path in disk.get("paths", {}).items()}
        return found

    def _wire(self) -> None:
        for link in LINKS:
            nx.add_bridge(self.name, link)
        for index, server in enumerate(self.servers, 1):
            nx.add_netns(self.name, server)
            for link in LINKS:
                nx.add_cable(self.name, server, index, link)
        if self.doc.get("client"):
            nx.add_client(self.name)

    def _env(self, server: str) -> dict[str, str]:
        """A fresh environment: nothing of the caller's leaks in (CLP_NO_POWER least of all,
        which would make the server's power actions fail instead of ending its init)."""
        env = {"PATH": f"{self.doc['bin']}:/usr/sbin:/usr/bin:/sbin:/bin",
               "PYTHONPATH": self.doc["repo"], "CLP_ROOT": DEFAULT_ROOT, "CLPLAB": self.name,
               "CLPLAB_SERVER": server, "HOME": "/root", "LANG": "C.UTF-8", "HOSTNAME": server}
        if self.doc.get("installed"):  # its commands, and its python for the sample's app;
            env["PATH"] = f"{DEFAULT_ROOT}/bin:{DEFAULT_ROOT}/lib/python/bin:/usr/sbin:" \
                "/usr/bin:/sbin:/bin"  # no PYTHONPATH: the repository must not shadow it
            del env["PYTHONPATH"]
        if "TERM" in os.environ:
            env["TERM"] = os.environ["TERM"]
        return env

    def _boot(self, server: str) -> None:
        _reap_holders()
        root = self.root_of(server)
        code = self.doc.get("installed")
        supervise = f"{DEFAULT_ROOT}/bin/clpsupervise" if code else \
            str(Path(self.doc["bin"]) / "clpsupervise")
        argv = ["ip", "netns", "exec", nx.netns_name(self.name, server), *UNSHARE,
                self.doc["python"], "-m", "clp.lab.init", server, str(root), supervise]
        argv += [f"--code={code}"] if code else []
        argv += [f"--disk={d['name']}={d['paths'][server]['dev']}"
                 for d in self.doc.get("disks", []) if server in d.get("paths", {})]
        argv += hb_disk.init_args(self.doc, server)
        argv += com_cable.init_args(self.doc, server)
        argv += watchdog.init_args(self.doc, server)
        watchdog.disarm(self.doc, server)  # a machine powered on has no running watchdog
        argv += [f"--mq-depth={mq_depth(len(self.servers))}"]
        argv += [f"--base={i}={a}" for i, a in nx.base_addresses(self.index(server)).items()]
        (root.parent / "power").unlink(missing_ok=True)
        (root / "log").mkdir(parents=True, exist_ok=True)
        with open(root / "log" / "init.log", "ab") as out:
            env = {**self._env(server), "PYTHONPATH": self.doc["repo"]}  # for init; not passed on
            holder = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, cwd="/",
                                      start_new_session=True)
        _HOLDERS.append(holder)
        init = nx.poll(f"the init of {server}", lambda: nx.first_child(holder.pid), 10.0)
        self.doc["nodes"][server] = {"index": self.index(server), "init_pid": init,
                                     "holder_pid": holder.pid, "booted": time.time()}
        self._save()

    def _wait_ready(self, server: str) -> None:
        client = SupervisorClient(InstallRoot(self.root_of(server)), timeout=2.0)

        def answers() -> bool:
            if self._init_pid(server) is None:
                log = self.root_of(server) / "log" / "init.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise LabError(f"{server}: init exited during boot; {log}:\n{tail}")
            try:
                return bool(client.status().get("ok"))
            except SupervisorError:
                return False

        nx.poll(f"clpsupervise of {server} to answer", answers, BOOT_WAIT, 0.1)

    # lookups
    def index(self, server: str) -> int:
        if server not in self.servers:
            raise LabError(f"lab {self.name!r} has no server {server!r} "
                           f"(servers: {', '.join(self.servers)})")
        return self.servers.index(server) + 1

    def root_of(self, server: str) -> Path:
        self.index(server)
        return VAR_DIR / self.name / server / "root"

    def addresses(self, server: str) -> dict[str, str]:
        i = self.index(server)
        return {link: nx.address(i, link) for link in LINKS}

    def _init_pid(self, server: str) -> int | None:
        """The live init of ``server``, checked against /proc so a reused pid is not mistaken."""
        pid = self.doc["nodes"].get(server, {}).get("init_pid")
        if not pid or not nx.alive(pid):
            return None
        env = nx.environ_of(pid)  # empty while the process is in execve: not a mismatch
        if env and (env.get("CLPLAB") != self.name or env.get("CLPLAB_SERVER") != server):
            return None
        return int(pid)

    def _live_init(self, server: str) -> int:
        self.index(server)
        pid = self._init_pid(server)
        if pid is None:
            raise LabError(f"{server} is not running (crashed; 'clplab restart {server}')")
        return pid

    def state_of(self, server: str) -> str:
        """running, hung, down (its init ended after a shutdown) or crashed (anything else)."""
        pid = self._init_pid(server)
        if pid is None:
            with contextlib.suppress(OSError):
                how = (self.root_of(server).parent / "power").read_text().strip()
                if how in ("shutdown", "exit 0"):
                    return "down"
            return "crashed"
        return "hung" if nx.proc_state(pid) == "T" else "running"

    # running commands inside a server
    def _nsenter(self, server: str, argv: list[str]) -> list[str]:
        pid = self._live_init(server)
        return ["nsenter", "-t", str(pid), "-n", "-m", "-p", "-i", "-u", "--", *argv]

    def popen(self, server: str, argv: list[str], **kw: Any) -> subprocess.Popen:
        env = {**self._env(server), **(kw.pop("env", None) or {})}
        env.pop("CLP_NO_POWER", None)
        kw.setdefault("cwd", "/")
        return subprocess.Popen(self._nsenter(server, argv), env=env, **kw)

    def exec(self, server: str, argv: list[str], timeout: float = 30,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = self.popen(server, argv, stdin=subprocess.PIPE if input is not None
                          else subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)
        return communicate(proc, server, argv, timeout, input)

    def status(self) -> dict[str, Any]:
        servers = {}
        for server in self.servers:
            servers[server] = {"state": self.state_of(server),
                               "init_pid": self._init_pid(server),
                               "addresses": self.addresses(server),
                               "unplugged": [lk for s, lk in self.doc["unplugged"] if s == server],
                               "root": str(self.root_of(server))}
        paths = self.disk_paths()
        disks = {d["name"]: {"file": d["file"], "paths": paths[d["name"]]}
                 for d in self.doc.get("disks", [])}
        return {"lab": self.name, "servers": servers, "partition": self.doc["partition"],
                "disks": disks, "client": bool(self.doc.get("client")),
                "router": lab_router.status(self),
                "watchdogs": watchdog.state(self.name) if self.doc.get("watchdog") else {}}

    # teardown
    def down(self) -> None:
        """SIGTERM to each init (clpsupervise stops its services), SIGKILL after 5 s, remove all.
        A hung disk path fails first (``eio``): a server blocked on it could not stop."""
        with contextlib.suppress(LabError):
            hung = [n for n, m in shared_disk.modes(self.name).items() if m == "hang"]
            if hung:
                shared_disk.set_mode(self.name, hung, "eio")
        inits = [p for p in (self._init_pid(s) for s in self.servers) if p is not None]
        for pid in inits:
            ns = nx.pidns_of(pid)
            nx.signal_all(nx.pids_in_pidns(ns) if ns else [pid], signal.SIGCONT)
            nx.signal_all([pid], signal.SIGTERM)
        with contextlib.suppress(LabError):
            nx.poll("the servers to stop", lambda: not any(nx.alive(p) for p in inits), STOP_WAIT)
        self.cleanup_all(self.name)

    @classmethod
    def cleanup_all(cls, name: str | None = None) -> None:
        """Best effort: remove everything of lab ``name`` (every lab if None), lab.json or not."""
        for lab in [name] if name is not None else teardown.known_labs():
            teardown.cleanup_lab(lab)
        teardown.remove_shared_dirs()
        _reap_holders()


_HOLDERS: list[subprocess.Popen] = []  # our `ip netns exec unshare` children, reaped when done


def _reap_holders() -> None:
    for holder in list(_HOLDERS):
        if holder.poll() is not None:
            _HOLDERS.remove(holder)
