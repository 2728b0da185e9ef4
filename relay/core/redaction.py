"""Masking secrets in text that leaves the process: log lines, error bodies, status output."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

_SECRET_PATTERNS = (
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)(bearer\s+)[^\s\"']+"),
    re.compile(r"(?i)(password=)[^&\s\"']+"),
    re.compile(r"(?i)(redis(?:s)?://[^:/@\s]*:)[^@\s]+(@)"),
)


def redact(text: str) -> str:
    """`text` with webhook secrets, bearer tokens and passwords replaced by ***."""
    text = _SECRET_PATTERNS[0].sub("whsec_***", text)
    text = _SECRET_PATTERNS[1].sub(r"\1***", text)
    text = _SECRET_PATTERNS[2].sub(r"\1***", text)
    return _SECRET_PATTERNS[3].sub(r"\1***\2", text)


def display_url(url: str) -> str:
    """`url` without its password, query values or fragment (they may hold tokens)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
