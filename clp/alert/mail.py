"""Mail reports by SMTP: one mail per alert to every address of ``alert.mail.to``.

The SMTP servers of ``alert.mail.smtp`` are tried in their order; the first that takes the mail
ends the attempt. ``security``: ``none`` (plain), ``starttls`` (the session is upgraded before
authenticating and sending; a server that does not offer it is an error, never a silent plain
send), ``tls`` (implicit TLS, port 465). The server's certificate and host name are always
checked, against ``ca_file`` or the system's certificates. Authentication when ``user`` is set.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from clp.alert.delivery import DeliveryError
from clp.alert.settings import MAIL_MODULE, MailSettings, SmtpServer
from clp.evt.records import Record

log = logging.getLogger("clp.alertsync")


def compose(settings: MailSettings, rec: Record, cluster: str, server: str) -> EmailMessage:
    rec = {**rec, "msg": rec["msg"].replace("\0", "\\0")}  # no NUL on the wire
    eid = "-" if rec["event_id"] is None else str(rec["event_id"])
    first_line = rec["msg"].splitlines()[0] if rec["msg"] else ""
    msg = EmailMessage()
    msg["From"] = settings.sender or f"clusterpro@{server}"
    msg["To"] = ", ".join(settings.to)
    msg["Subject"] = (f"{settings.subject}: {rec['level']} {rec['server']} "
                      f"{rec['module']} {eid} {first_line}")[:900]
    msg["Date"] = formatdate(rec["t"], localtime=True)
    msg["Message-ID"] = make_msgid(domain=server)
    when = datetime.fromtimestamp(rec["t"]).astimezone().isoformat(timespec="milliseconds")
    msg.set_content(
        f"Cluster:  {cluster}\n"
        f"Server:   {rec['server']}\n"
        f"Time:     {when}\n"
        f"Module:   {rec['module']}\n"
        f"Event ID: {eid}\n"
        f"Level:    {rec['level']}\n"
        f"Message:  {rec['msg']}\n")
    return msg


def _tls(server: SmtpServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_file)


def _send_one(server: SmtpServer, msg: EmailMessage, local_name: str) -> None:
    if server.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, local_name,
                                              timeout=server.timeout, context=_tls(server))
    else:
        smtp = smtplib.SMTP(server.host, server.port, local_name, timeout=server.timeout)
    with smtp:
        smtp.ehlo()
        if server.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS")
            smtp.starttls(context=_tls(server))
            smtp.ehlo()
        if server.user is not None:
            smtp.login(server.user, server.password or "")
        refused = smtp.send_message(msg)
        if refused:  # some recipients taken, some not: the mail went; not again, but said
            log.warning("mail about %s %s: %s", msg["Subject"], server.label,
                        _why(smtplib.SMTPRecipientsRefused(refused)),
                        extra={"alert": True, "evt_module": MAIL_MODULE})


def _why(e: BaseException) -> str:
    if isinstance(e, smtplib.SMTPResponseException):
        text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) \
            else str(e.smtp_error)
        return f"{e.smtp_code} {text}"
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        return "recipients refused: " + ", ".join(
            f"{who} ({code} {text.decode(errors='replace') if isinstance(text, bytes) else text})"
            for who, (code, text) in e.recipients.items())
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host name ({e.strerror})"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {e.verify_message}"
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def send(settings: MailSettings, rec: Record, cluster: str, server: str) -> str:
    """Mail one alert; returns the SMTP server that took it. Raises :class:`DeliveryError`
    naming every server tried and why each failed."""
    msg = compose(settings, rec, cluster, server)
    errors = []
    refused_content = 0  # servers that refused this mail's content for good (552, 554 ...)
    for smtp in settings.smtp:
        try:
            _send_one(smtp, msg, server)
        except (smtplib.SMTPException, OSError, ValueError) as e:
            errors.append((smtp.label, _why(e)))
            refused_content += isinstance(e, smtplib.SMTPDataError) and e.smtp_code >= 500
        else:
            return smtp.label
    where = ", ".join(label for label, _ in errors)
    why = errors[0][1] if len(errors) == 1 else "; ".join(f"{w}: {y}" for w, y in errors)
    raise DeliveryError(why, where, permanent=refused_content == len(errors))
