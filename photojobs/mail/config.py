"""The [mail] table of photojobs.toml.

    [mail]
    transport = "file"        # "file" (the default): each message is written as an .eml
                              #   file under <storage>/mail/; "smtp": sent to `host`
    from = "Studio <studio@example.com>"   # the From header (default photojobs@localhost)
    templates = "mail-templates"  # a folder whose NAME.txt / NAME.html override or add
                              #   templates (relative to the config file's folder)
    rate_per_minute = 0       # at most this many messages sent a minute (0: no limit);
                              #   send_email jobs are spaced out when they are queued
    max_inline_images = 20    # thumbnails embedded in one message (0: none)

    # smtp only
    host = "smtp.example.com" # default localhost
    port = 587                # default 587 for starttls, 465 for ssl, 25 for none
    tls = "starttls"          # "starttls", "ssl" (implicit TLS) or "none"
    username = "studio"       # or PHOTOJOBS_SMTP_USERNAME; no username: no login
    password_env = "PHOTOJOBS_SMTP_PASSWORD"  # the environment variable with the password
    connect_timeout = 10      # seconds to connect
    timeout = 30              # seconds to wait for each reply of the server
    cafile = "ca.pem"         # extra CA certificates to trust (a private CA); the
                              #   system's CAs are always trusted, certificates are
                              #   always verified and the host name checked

`parse_mail` reads the table once, when the settings load (settings.SECTIONS):
`settings.mail` is the MailConfig.

The password is never read from the config file (a `password` key is refused): it comes
from the environment, and never reaches logs, the outbox or the failed table.
With tls = "none" a login is refused unless the host is a loopback address.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..settings import LARGEST, check_keys, check_number

TRANSPORTS = ("file", "smtp")
TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_FROM = "photojobs@localhost"
PASSWORD_ENV = "PHOTOJOBS_SMTP_PASSWORD"
USERNAME_ENV = "PHOTOJOBS_SMTP_USERNAME"

_KEYS = {"transport", "from", "templates", "rate_per_minute", "max_inline_images", "host", "port", "tls",
         "username", "password_env", "connect_timeout", "timeout", "cafile"}


@dataclasses.dataclass(frozen=True)
class MailConfig:
    transport: str = "file"
    sender: str = DEFAULT_FROM
    templates: Path | None = None
    rate_per_minute: int = 0
    max_inline_images: int = 20
    host: str = "localhost"
    port: int = 587
    tls: str = "starttls"
    username: str | None = None
    password_env: str = PASSWORD_ENV
    connect_timeout: float = 10.0
    timeout: float = 30.0
    cafile: Path | None = None
    mail_dir: Path = Path("storage/mail")

    def password(self, env: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if env is None else env
        return env.get(self.password_env) or None

    @property
    def host_is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        import ipaddress  # here: every command's settings load imports this module

        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _number(table: Mapping[str, Any], key: str, default: float, kind: type = float, minimum: float = 0,
            maximum: float = LARGEST) -> Any:
    return check_number(table.get(key, default), key, "[mail]", minimum, maximum, whole=kind is int)


def _text(table: Mapping[str, Any], key: str, default: str | None, choices: tuple[str, ...] = ()) -> Any:
    value = table.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"[mail] {key} = {value!r}: expected a non-empty string")
    if choices and value not in choices:
        raise ConfigError(f"[mail] {key} = {value!r}: expected one of {', '.join(choices)}")
    return value.strip()


def _path(root: Path, value: str | None) -> Path | None:
    return (root / Path(value).expanduser()).resolve() if value else None


def parse_mail(table: Mapping[str, Any], settings: Any, env: Mapping[str, str] | None = None) -> MailConfig:
    """Read and check the [mail] table (settings.SECTIONS); `settings` gives the folders
    relative paths are resolved against."""
    env = os.environ if env is None else env
    if "password" in table:
        raise ConfigError("[mail] password is not read from the config file",
                          hint=f"put it in the environment variable {PASSWORD_ENV}")
    check_keys(table, _KEYS, "[mail]")
    tls = _text(table, "tls", "starttls", TLS_MODES)
    config = MailConfig(
        transport=_text(table, "transport", "file", TRANSPORTS),
        sender=_text(table, "from", DEFAULT_FROM),
        templates=_path(settings.root, _text(table, "templates", None)),
        rate_per_minute=_number(table, "rate_per_minute", 0, int),
        max_inline_images=_number(table, "max_inline_images", 20, int),
        host=_text(table, "host", "localhost"),
        port=_number(table, "port", DEFAULT_PORTS[tls], int, 1, 65535),
        tls=tls,
        username=_text(table, "username", None) or env.get(USERNAME_ENV) or None,
        password_env=_text(table, "password_env", PASSWORD_ENV),
        connect_timeout=_number(table, "connect_timeout", 10.0, float, 1),
        timeout=_number(table, "timeout", 30.0, float, 1),
        cafile=_path(settings.root, _text(table, "cafile", None)),
        mail_dir=settings.storage_path / "mail",
    )
    if config.cafile is not None and not config.cafile.is_file():
        raise ConfigError(f"[mail] cafile {config.cafile} does not exist")
    if config.templates is not None and not config.templates.is_dir():
        raise ConfigError(f"[mail] templates folder {config.templates} does not exist")
    if config.transport == "smtp" and config.tls == "none" and config.username and not config.host_is_loopback:
        raise ConfigError(f"[mail] refusing to send the SMTP password to {config.host} without TLS",
                          hint='set tls = "starttls" or "ssl"')
    return config
