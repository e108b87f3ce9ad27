"""The [postgres] table of photojobs.toml, read once when the settings load (settings.SECTIONS),
without importing psycopg (every command's load pays for this module):

    [postgres]
    pool_size = 4                       # pooled connections per process
    pool_timeout = 30                   # seconds to wait for a free one
    idle_in_transaction_timeout = 30    # seconds the server keeps a silent transaction open
    listen = true                       # false behind a pooler in transaction mode (PgBouncer): poll
    prepare = true                      # false: no prepared statements (PgBouncer in transaction mode < 1.22)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..errors import ConfigError
from ..settings import check_keys, check_number

DEFAULT_POOL_SIZE = 4
IDLE_IN_TRANSACTION_TIMEOUT = 30.0


@dataclasses.dataclass(frozen=True)
class PostgresSettings:
    pool_size: int = DEFAULT_POOL_SIZE
    pool_timeout: float = 30.0
    idle_in_transaction_timeout: float = IDLE_IN_TRANSACTION_TIMEOUT
    listen: bool = True
    prepare: bool = True


def parse_postgres(table: Mapping[str, Any], settings: Any = None, env: Any = None) -> PostgresSettings:
    check_keys(table, {field.name for field in dataclasses.fields(PostgresSettings)}, "[postgres]")
    for flag in ("listen", "prepare"):
        if not isinstance(table.get(flag, True), bool):
            raise ConfigError(f"[postgres] {flag} = {table[flag]!r} is not true or false")
    return PostgresSettings(
        pool_size=check_number(table.get("pool_size", DEFAULT_POOL_SIZE), "pool_size", "[postgres]", 1, 1000,
                               whole=True),
        pool_timeout=check_number(table.get("pool_timeout", 30.0), "pool_timeout", "[postgres]", 0.01),
        idle_in_transaction_timeout=check_number(table.get("idle_in_transaction_timeout", IDLE_IN_TRANSACTION_TIMEOUT),
                                                 "idle_in_transaction_timeout", "[postgres]", 0.01),
        listen=table.get("listen", True), prepare=table.get("prepare", True))
