"""``clprexec``: ask a cluster server for an action from outside the cluster.

    clprexec --failover [GROUP] -h IP[,IP...] [-r RESOURCE] [-w TIMEOUT] [-p PORT] [-o LOG]
    clprexec --script SCRIPT -h IP[,IP...] [-w TIMEOUT] [-p PORT] [-o LOG]
    clprexec --notice [MRW] -h IP[,IP...] -k CATEGORY[.KEYWORD] [-m MESSAGE] ...
    clprexec --clear [MRW] -h IP[,IP...] -k CATEGORY[.KEYWORD] ...

The request goes to the server's ``clusterpro_trn`` (the data transfer port, 29002 by default)
and is signed with the clprexec key, derived from the cluster key: the servers accept it for
these requests and nothing else. ``clprexec --make-key FILE`` on a server writes it; a host
outside the cluster needs that file (``--key FILE``; on a server the cluster key itself serves)
and the cluster's name (``--cluster``, by default from this install root's clp.conf). The IP
addresses are tried in order until one answers. ``--failover`` moves GROUP (or the group of
RESOURCE, or every group running on that server) to the next server of its policy; ``--script``
runs one of the scripts placed in the server's ``work/trnreq/``; ``--notice`` / ``--clear``
report an error to the mrw monitors of that category (and keyword), or clear it. Every request
is an alert on the server (trnsv 10), a refused one too (trnsv 1).
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import click

from clp.cli.common import Code, finish, invalid_name, require_root
from clp.cli.options import Command
from clp.net import frames
from clp.paths import InstallRoot

DEFAULT_PORT = 29002


def _address_list(text: str) -> list[str]:
    import ipaddress

    out = []
    for item in text.split(","):
        try:
            out.append(str(ipaddress.ip_address(item.strip())))
        except ValueError:
            finish(Code.INVALID_OPTION, f"-h {text}: {item.strip()!r} is not an IP address.")
    return out


def _cluster_and_key(root: InstallRoot, cluster: str | None, key_file: str | None
                     ) -> tuple[str, bytes]:
    from clp.keys import KeyFileError, load_rexec_key

    try:
        key = load_rexec_key(Path(key_file) if key_file else root.key_file)
    except KeyFileError as e:
        finish(Code.INVALID_CONFIG, f"{e} (make a clprexec key with 'clprexec --make-key FILE' "
                                    f"on a server of the cluster, copy it here and give it with "
                                    f"--key FILE)")
    if cluster is None:
        from clp.config import ConfigError, load_config

        try:
            cluster = load_config(root.config_dir).name
        except ConfigError:
            finish(Code.INVALID_CONFIG, "No cluster configuration here: name the cluster with "
                                        "--cluster.")
    return cluster, key


@click.command(cls=Command)
@click.option("--failover", "action", flag_value="failover", help="Fail a group over.")
@click.option("--script", "script", metavar="SCRIPT",
              help="Run SCRIPT of the server's work/trnreq/.")
@click.option("--notice", "action", flag_value="notice", help="Report an error to mrw.")
@click.option("--clear", "action", flag_value="clear", help="Clear an error of mrw.")
@click.option("-h", "hosts", metavar="IP[,IP...]", help="The server(s) to ask, in order.")
@click.option("-r", "resource", metavar="RESOURCE", help="--failover: the group of RESOURCE.")
@click.option("-k", "category", metavar="CATEGORY[.KEYWORD]", help="--notice / --clear.")
@click.option("-m", "message", default="", help="--notice: what happened.")
@click.option("-w", "timeout", type=click.IntRange(1, 3600), default=180, show_default=True,
              metavar="TIMEOUT", help="Seconds to wait for the answer.")
@click.option("-p", "port", type=click.IntRange(1, 65535), default=DEFAULT_PORT,
              show_default=True, metavar="PORT", help="The servers' data transfer port.")
@click.option("-o", "log_file", metavar="LOG", help="Also write the result to LOG.")
@click.option("--key", "key_file", metavar="FILE",
              help="The clprexec key (from --make-key; on a server, its cluster.key).")
@click.option("--make-key", "make_key", metavar="FILE",
              help="Write the clprexec key of this server's cluster to FILE (mode 0600), for a "
                   "host outside the cluster.")
@click.option("--cluster", metavar="NAME", help="The cluster's name.")
@click.argument("target", required=False)
def main(action: str | None, script: str | None, hosts: str | None, resource: str | None,
         category: str | None, message: str, timeout: int, port: int, log_file: str | None,
         key_file: str | None, make_key: str | None, cluster: str | None,
         target: str | None) -> None:
    """Ask a cluster server for a failover, a script, or an mrw notice."""
    if make_key is not None:
        _make_key(Path(make_key), action, script, hosts)
    if (action is None) == (script is None):
        finish(Code.INVALID_OPTION, "Specify one of --failover, --script, --notice, --clear.")
    if not hosts:
        finish(Code.INVALID_OPTION, "Name the server with -h IP.")
    args: dict[str, Any] = {"action": action or "script", "timeout": timeout}
    if script is not None:
        args["script"] = script
    elif action == "failover":
        args.update(group=target, resource=resource)
    else:
        if not category:
            finish(Code.INVALID_OPTION, f"--{action} needs -k CATEGORY[.KEYWORD].")
        cat, _, keyword = category.partition(".")
        args.update(category=cat, keyword=keyword or None, monitor=target, message=message)
    root = InstallRoot.from_env()
    name, key = _cluster_and_key(root, cluster, key_file)
    request = frames.new_request(name, socket.gethostname().split(".")[0], "rexec", args)
    reply, where, errors = None, "", []
    for address in _address_list(hosts):
        try:
            reply = frames.call(address, port, key, request, timeout=timeout + 10)
            where = address
            break
        except (OSError, frames.FrameError) as e:
            errors.append(f"{address}: {e}")
    if reply is None:
        _log(log_file, f"failed: could not reach {hosts} ({'; '.join(errors)})")
        finish(Code.UNREACHABLE, f"Could not reach {hosts}: {'; '.join(errors)}.")
    ok, code, text = bool(reply.get("ok")), int(reply.get("code", 11)), str(reply.get("message"))
    _log(log_file, f"{args['action']} on {where}: {'succeeded' if ok else 'failed'} {text}")
    output = (reply.get("data") or {}).get("output")
    if output:  # the script's own words, whether it succeeded or not
        click.echo(output, err=True)
    if not ok:
        if code == 5 and args["action"] in ("notice", "clear") and target:
            invalid_name("monitor", target, name)
        finish(code, f"{where}: {text}")
    finish(Code.SUCCESS)


def _make_key(path: Path, action: str | None, script: str | None, hosts: str | None) -> None:
    """``--make-key FILE``: on a server of the cluster, the key a host outside it needs."""
    from clp.keys import KeyFileError, load_key, write_rexec_key

    require_root()
    if action or script or hosts:
        finish(Code.INVALID_OPTION, "--make-key goes alone.")
    root = InstallRoot.from_env()
    try:
        write_rexec_key(path, load_key(root.key_file))
    except KeyFileError as e:
        finish(Code.INVALID_CONFIG, str(e))
    except FileExistsError:
        finish(Code.INVALID_OPTION, f"{path} exists: choose a new file.")
    except OSError as e:
        finish(Code.INTERNAL, f"cannot write {path}: {e.strerror}")
    click.echo(f"{path}: the clprexec key of this cluster; copy it (mode 0600) to the hosts that "
               f"run clprexec, and give it with --key.", err=True)
    finish(Code.SUCCESS)


def _log(path: str | None, line: str) -> None:
    if path is None:
        return
    try:
        with open(path, "a") as f:
            f.write(time.strftime("%Y/%m/%d %H:%M:%S ") + line + "\n")
    except OSError as e:
        click.echo(f"cannot write {path}: {e}", err=True)


if __name__ == "__main__":
    sys.exit(main())
