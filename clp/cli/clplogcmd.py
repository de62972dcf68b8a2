"""``clplogcmd``: write a message to the cluster's logs from a script.

    clplogcmd -m MESSAGE [--syslog] [--alert] [--mail] [--trap] [-i EVENTID] [-l ERR|WARN|INFO]

The message goes to ``log/logcmd.log`` and to the destinations given; with none of ``--syslog``,
``--alert``, ``--mail``, ``--trap`` it goes to syslog and the alert log, as in the product.
``--mail`` and ``--trap`` are carried in the record for the alert service, which sends the mail
and the SNMP trap where they are configured (the alert service comes with its issue: until then
the record says it was asked for, and nothing is sent). The record
travels through the ``evt`` queue to ``clusterpro_evt``; if that queue does not exist the event
service has never run on this install root and the command fails rather than losing the message.
"""

from __future__ import annotations

import click

from clp.cli.common import Code, finish, require_root
from clp.cli.options import Command
from clp.evt.records import make_record
from clp.evt.sender import EventSender
from clp.paths import InstallRoot

MODULE = "logcmd"
LEVELS = {"ERR": "ERROR", "WARN": "WARNING", "INFO": "INFO"}
MAX_MESSAGE_BYTES = 511
EVENT_ID_RANGE = (1, 10000)
SEND_WAIT = 2.0  # a command may wait a little for room in a full queue; daemons never do


def _validate(message: str | None, event_id: int, level: str) -> str:
    """Return the record level for ``level``; finish with a clear error on any bad option."""
    if message is None or not message.strip():
        finish(Code.INVALID_OPTION, "Specify a non-empty message with -m.")
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        finish(Code.INVALID_OPTION,
               f"The message is too long (at most {MAX_MESSAGE_BYTES} bytes).")
    low, high = EVENT_ID_RANGE
    if not low <= event_id <= high:
        finish(Code.INVALID_OPTION, f"Specify an event ID from {low} to {high}.")
    name = LEVELS.get(level.upper())
    if name is None:
        finish(Code.INVALID_OPTION, f"Specify the level as one of {', '.join(LEVELS)}.")
    return name


@click.command(cls=Command)
@click.option("-m", "message", metavar="MESSAGE", help="Message to write (at most 511 bytes).")
@click.option("--syslog", "to_syslog", is_flag=True, help="Write to syslog.")
@click.option("--alert", "to_alert", is_flag=True, help="Write to the alert log.")
@click.option("--mail", "to_mail", is_flag=True, help="Report by mail (alert service).")
@click.option("--trap", "to_trap", is_flag=True, help="Report by SNMP trap (alert service).")
@click.option("-i", "event_id", type=int, default=1, show_default=True, metavar="EVENTID",
              help="Event ID, 1 to 10000.")
@click.option("-l", "level", default="INFO", show_default=True, metavar="LEVEL",
              help="ERR, WARN or INFO.")
def main(message: str | None, to_syslog: bool, to_alert: bool, to_mail: bool, to_trap: bool,
         event_id: int, level: str) -> None:
    """Write a message to the cluster's logs (syslog, alert log, mail report)."""
    require_root()
    record_level = _validate(message, event_id, level)
    assert message is not None
    if not (to_syslog or to_alert or to_mail or to_trap):
        to_syslog = to_alert = True
    record = make_record(MODULE, record_level, message, event_id=event_id, alert=to_alert,
                         syslog=to_syslog, mail=to_mail, trap=to_trap)
    sender = EventSender(InstallRoot.from_env(), create=False)
    try:
        if not sender.open():
            finish(Code.NOT_RUNNING, "The event service (clusterpro_evt) is not running. "
                                     "Check if the cluster services are active.")
        if not sender.send(record, timeout=SEND_WAIT):
            finish(Code.NOT_RUNNING, "The event service (clusterpro_evt) is not reading its "
                                     "queue (queue full). Check if it is active.")
    finally:
        sender.close()
    finish(Code.SUCCESS)


if __name__ == "__main__":
    main()
