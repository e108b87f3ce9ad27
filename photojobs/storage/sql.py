"""Small builders for the portable SQL the repositories write (named `:name` parameters)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def in_list(name: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`(:name0, :name1, ...)` for an `IN`, and its parameters. Give at least one value."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


def assignments(fields: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """`col = :set_col, ...` for an UPDATE, and its parameters. Column names come from
    code, never from users; values always go as parameters."""
    return ", ".join(f"{column} = :set_{column}" for column in fields), {f"set_{c}": v for c, v in fields.items()}


def where_equal(filters: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """` WHERE a = :a AND ...` for the filters that are not None ("" when none are)."""
    given = {column: value for column, value in filters.items() if value is not None}
    if not given:
        return "", {}
    return " WHERE " + " AND ".join(f"{column} = :{column}" for column in given), given
