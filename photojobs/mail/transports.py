"""Transports: `file` writes each message as an .eml file under <storage>/mail/; `smtp`
sends it with STARTTLS or implicit TLS, certificates verified.

`send(msg, sender, recipients, before_data=..., key=...)` calls `before_data()` at the
last moment before the message is handed over (the outbox marks its row 'sending'
there). Errors say what a retry can do:
- DeliveryDeferred (a RetryLater): a 4xx reply, a refused, lost or silent connection,
  before the message was handed over: retry.
- DeliveryRefused (a PermanentFailure): a 5xx reply, an untrusted certificate, no
  STARTTLS, a failed login: no retry.
- DeliveryUncertain: the connection failed while the server was receiving the message;
  it may have been delivered, so it is not resent automatically.
No error message carries the password.
"""

from __future__ import annotations

import base64
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Iterable, Mapping

from ..atomic import write_atomically
from ..errors import PermanentFailure, PhotojobsError, RetryLater
from .config import MailConfig


class DeliveryDeferred(RetryLater):
    """The server did not take the message now; try again later."""


class DeliveryRefused(PermanentFailure):
    """The server refused the message; a retry would not help."""


class DeliveryUncertain(PhotojobsError):
    """The message may or may not have been delivered."""


def _nothing() -> None:
    return None


REPLY_LIMIT = 300  # characters of a server's reply kept in an error message


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text` by [secret], in any letter case (a server may echo
    the password upper- or lower-cased, URL-encoded or in base64: give `secret_forms`)."""
    forms = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not forms:
        return text
    return re.sub("|".join(re.escape(f) for f in forms), "[secret]", text, flags=re.IGNORECASE)


def secret_forms(username: str | None, password: str | None) -> list[str]:
    """The password as it may appear in a reply or an error: as is, URL-encoded, and in
    base64 (alone and as AUTH PLAIN and AUTH LOGIN send it); `scrub` ignores letter case."""
    from urllib.parse import quote, quote_plus

    if not password:
        return []
    forms = {password, quote(password, safe=""), quote(password), quote_plus(password)}
    blobs = [password.encode(), f"\0{username or ''}\0{password}".encode(), f"{username or ''}\0{password}".encode()]
    for blob in blobs:
        for encoded in (base64.b64encode(blob).decode(), base64.urlsafe_b64encode(blob).decode()):
            forms |= {encoded, encoded.rstrip("=")}
    return sorted(forms, key=len, reverse=True)


def _reply_text(reply: bytes | str) -> str:
    """A server's reply for an error message: at most REPLY_LIMIT characters of it."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return text if len(text) <= REPLY_LIMIT else text[:REPLY_LIMIT] + "..."


def _file_name(key: str | None, message_id: str) -> str:
    raw = key or message_id.strip("<>")
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in raw)[:150] + ".eml"


class FileTransport:
    """Each message becomes <storage>/mail/<key>.eml (0600); re-sending rewrites the same file."""

    name = "file"
    idempotent = True

    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, msg: EmailMessage, sender: str, recipients: list[str], *,
             before_data: Callable[[], None] = _nothing, key: str | None = None) -> str:
        before_data()
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / _file_name(key, str(msg["Message-ID"]))
        write_atomically(path, msg.as_bytes(policy=policy.default), mode=0o600)
        return str(path)


class SmtpTransport:
    """SMTP with STARTTLS (tls = "starttls"), implicit TLS ("ssl") or none; verified certificates."""

    name = "smtp"
    idempotent = False

    def __init__(self, config: MailConfig, env: Mapping[str, str] | None = None):
        self.config = config
        self.password = config.password(env)
        self._secrets = secret_forms(config.username, self.password)

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def tls_context(self):
        import ssl

        context = ssl.create_default_context()  # CERT_REQUIRED and host name checked
        if self.config.cafile:
            context.load_verify_locations(cafile=str(self.config.cafile))
        return context

    def _connect(self):
        import smtplib

        cfg = self.config
        if cfg.tls == "ssl":
            smtp = smtplib.SMTP_SSL(timeout=cfg.connect_timeout, context=self.tls_context())
        else:
            smtp = smtplib.SMTP(timeout=cfg.connect_timeout)
        try:
            smtp._host = cfg.host  # the TLS server_hostname (SMTP() without a host leaves it empty)
            smtp.connect(cfg.host, cfg.port)
            smtp.sock.settimeout(cfg.timeout)
            smtp.timeout = cfg.timeout
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _greet(self, smtp) -> None:
        cfg = self.config
        smtp.ehlo_or_helo_if_needed()
        if cfg.tls == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryRefused(f"SMTP server {self.where} does not offer STARTTLS",
                                      hint='refusing to send in clear text; check [mail] tls and port')
            smtp.starttls(context=self.tls_context())
            smtp.ehlo()
        if cfg.username:
            if self.password is None:
                raise DeliveryRefused(f"no SMTP password: {cfg.password_env} is not set",
                                      hint=f"set {cfg.password_env} in the worker's environment")
            smtp.login(cfg.username, self.password)

    def _envelope(self, smtp, sender: str, recipients: list[str]) -> None:
        code, reply = smtp.mail(sender)
        if code != 250:
            raise self._reply_error(code, reply, "MAIL FROM")
        for rcpt in recipients:
            code, reply = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise self._reply_error(code, reply, f"RCPT TO {rcpt}")

    def send(self, msg: EmailMessage, sender: str, recipients: list[str], *,
             before_data: Callable[[], None] = _nothing, key: str | None = None) -> str:
        import smtplib

        data = msg.as_bytes(policy=policy.SMTP)
        try:
            smtp = self._connect()
        except PhotojobsError:  # e.g. the job's own timeout: not the server's doing
            raise
        except Exception as exc:
            raise self._translate(exc) from None
        try:
            try:
                self._greet(smtp)
                self._envelope(smtp, sender, recipients)
            except PhotojobsError:
                raise
            except Exception as exc:
                raise self._translate(exc) from None
            before_data()
            try:
                code, reply = smtp.data(data)
            except smtplib.SMTPResponseException as exc:
                raise self._reply_error(exc.smtp_code, exc.smtp_error, "DATA") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryUncertain(self._clean(f"SMTP {self.where}: the connection failed while the server"
                                                    f" was receiving the message ({type(exc).__name__}: {exc});"
                                                    " it may have been delivered")) from None
            if code != 250:  # smtplib returns the final reply to DATA instead of raising
                raise self._reply_error(code, reply, "DATA")
            return self._clean(f"{code} {_reply_text(reply)}")
        finally:
            try:
                smtp.quit()
            except Exception:
                smtp.close()

    # -- errors ------------------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _reply_error(self, code: int, reply: bytes | str, step: str) -> PhotojobsError:
        message = self._clean(f"SMTP {self.where} answered {code} {_reply_text(reply)} to {step}")
        if 400 <= code < 500:
            return DeliveryDeferred(message)
        return DeliveryRefused(message)

    def _translate(self, exc: BaseException) -> PhotojobsError:
        import smtplib
        import ssl

        if isinstance(exc, PhotojobsError):
            return exc
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._reply_error(exc.smtp_code, exc.smtp_error, "the connection")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryRefused(self._clean(f"the TLS certificate of {self.where} is not trusted:"
                                               f" {exc.verify_message or exc}"),
                                   hint="fix the server's certificate, or name its CA in [mail] cafile")
        if isinstance(exc, ssl.SSLError):
            return DeliveryRefused(self._clean(f"TLS with {self.where} failed: {exc}"),
                                   hint='check [mail] tls ("starttls" or "ssl") and port')
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryRefused(self._clean(f"SMTP {self.where}: {exc}"))
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return DeliveryDeferred(f"SMTP {self.where} did not answer in time")
        if isinstance(exc, (OSError, smtplib.SMTPException)):
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            return DeliveryDeferred(self._clean(f"cannot reach SMTP server {self.where}: {detail}"))
        return DeliveryRefused(self._clean(f"SMTP {self.where}: {type(exc).__name__}: {exc}"))


def make_transport(config: MailConfig, env: Mapping[str, str] | None = None) -> FileTransport | SmtpTransport:
    if config.transport == "smtp":
        return SmtpTransport(config, env)
    return FileTransport(config.mail_dir)
