"""Field validation of admin input (request bodies, query values, console forms).

Each check raises InvalidInput naming the field. The patterns are the ones `openapi.yaml`
declares (JSON Schema semantics: `re.search`), so what the schema allows the API accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from relay.core.errors import InvalidInput
from relay.core.headers import RESERVED_HEADER

# ASCII classes only: Python's and ECMA 262's `\s` differ, and `$` also matches before a
# final newline in Python, so "no whitespace" is spelled as a character class searched for.
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
NOT_VISIBLE_ASCII = re.compile(r"[^!-~]")
_SCHEME = r"[Hh][Tt][Tt][Pp][Ss]?"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = r"[A-Za-z]([A-Za-z0-9-]{0,59}[A-Za-z0-9])?"  # never numeric: no IPv4 look-alikes
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_H16 = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"(({_H16}:){{7}}{_H16}|({_H16}:){{1,7}}:|({_H16}:){{1,6}}:{_H16}"
    rf"|({_H16}:){{1,5}}(:{_H16}){{1,2}}|({_H16}:){{1,4}}(:{_H16}){{1,3}}"
    rf"|({_H16}:){{1,3}}(:{_H16}){{1,4}}|({_H16}:){{1,2}}(:{_H16}){{1,5}}"
    rf"|{_H16}:(:{_H16}){{1,6}}|:((:{_H16}){{1,7}}|:))"
)
_HOST = rf"(({_LABEL}\.){{0,7}}{_TOP_LABEL}\.?|{_OCTET}(\.{_OCTET}){{3}}|\[{_IPV6}\])"
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
TARGET_URL = re.compile(rf"^{_SCHEME}://{_HOST}(:{_PORT})?([/?#][!-~]*)?$")
BASE_URL = re.compile(rf"^{_SCHEME}://{_HOST}(:{_PORT})?(/[!-~]*)?$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_VALUE = re.compile(r"^[\t -~]*$")
HEADER_VALUE_FORBIDDEN = re.compile(r"[^\t -~]|^[\t ]|[\t ]$")
CURSOR = re.compile(
    r"^YzE6((?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5])*"
    r"((?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]|(?:[MN][AQgw]|O[AQ])|(?:[MN][DTjz]|O[DT])[AEIMQUYcgk])$"
)
# Appended to a refused subscriber URL's error: the switch, and why it is off.
PRIVATE_TARGETS_HINT = (
    "set RELAY_ALLOW_PRIVATE_TARGETS=true to allow loopback and private targets, for local "
    "testing only (`relay dev` sets it)"
)
MAX_HEADERS = 20
MAX_HEADER_NAME = 100
MAX_HEADER_VALUE = 1000
MAX_EPOCH_S = 253402300799  # 9999-12-31T23:59:59Z
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
INTEGER = re.compile(r"^-?[0-9]{1,18}(\.0*)?$")


def required(data: Mapping[str, Any], name: str) -> Any:
    """`data[name]`, or InvalidInput when it is missing."""
    if name not in data:
        raise InvalidInput(f"{name} is required", field=name)
    return data[name]


def text(
    value: Any,
    name: str,
    *,
    max_length: int,
    min_length: int = 1,
    pattern: re.Pattern[str] | None = None,
    hint: str = "",
) -> str:
    """A string of `min_length`..`max_length` characters matching `pattern`."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    if not min_length <= len(value) <= max_length:
        raise InvalidInput(
            f"{name} must be {min_length} to {max_length} characters long", field=name
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} must be valid Unicode text", field=name) from None
    if pattern is not None and not pattern.search(value):
        raise InvalidInput(f"{name} {hint or 'has an invalid format'}", field=name)
    return value


def no_whitespace(value: Any, name: str, *, max_length: int) -> str:
    """A non-empty string without spaces or ASCII control characters."""
    checked = text(value, name, max_length=max_length)
    if CONTROL_OR_SPACE.search(checked):
        raise InvalidInput(f"{name} must not contain spaces or control characters", field=name)
    return checked


def integer(value: Any, name: str, *, low: int, high: int) -> int:
    """A JSON integer (1.0 counts, true does not) in [low, high]."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer", field=name)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", field=name)
    return value


def number(value: Any, name: str, *, low: float, high: float) -> float:
    """A finite JSON number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number", field=name)
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low:g} and {high:g}", field=name)
    return float(value)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return value


def text_list(
    value: Any,
    name: str,
    *,
    max_items: int,
    max_length: int,
    choices: Sequence[str] | None = None,
) -> tuple[str, ...]:
    """A non-empty list of distinct strings (each one of `choices` when given)."""
    if not isinstance(value, list):
        raise InvalidInput(f"{name} must be a list of strings or null", field=name)
    if not 1 <= len(value) <= max_items:
        raise InvalidInput(f"{name} must have 1 to {max_items} items (null means all)", field=name)
    items = tuple(text(item, name, max_length=max_length) for item in value)
    if choices is not None:
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise InvalidInput(
                f"{name} has unknown value {unknown[0]!r}; known: {', '.join(choices)}",
                field=name,
            )
    if len(set(items)) != len(items):
        raise InvalidInput(f"{name} must not repeat a value", field=name)
    return items


def headers(value: Any, name: str = "headers") -> dict[str, str]:
    """Custom headers for webhooks: at most 20, valid names, no reserved ones, safe values."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be an object of header names to values", field=name)
    if len(value) > MAX_HEADERS:
        raise InvalidInput(f"{name} may have at most {MAX_HEADERS} entries", field=name)
    for key, item in value.items():
        where = f"{name}.{key}"
        text(
            key,
            where,
            max_length=MAX_HEADER_NAME,
            pattern=HEADER_NAME,
            hint="is not a valid header name",
        )
        if NOT_VISIBLE_ASCII.search(key):
            raise InvalidInput(f"{where} is not a valid header name", field=where)
        if RESERVED_HEADER.search(key):
            raise InvalidInput(f"{where} is set by relay and cannot be overridden", field=where)
        text(
            item,
            where,
            max_length=MAX_HEADER_VALUE,
            min_length=0,
            pattern=HEADER_VALUE,
            hint="must be printable ASCII",
        )
        if HEADER_VALUE_FORBIDDEN.search(item):
            raise InvalidInput(
                f"{where} must be printable ASCII without leading or trailing whitespace",
                field=where,
            )
    return dict(value)
