"""Subscriber URL safety (SSRF rules): what a webhook may be sent to.

Two checks: `validate_target_url` when a URL is saved (shape, and IP literals in every
spelling a URL parser or `inet_aton` accepts), and `is_public_address` on each address the
URL's host resolves to at delivery time (so DNS cannot point a saved name at a refused
address later).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from relay.core.errors import InvalidInput, UnsafeTarget

MAX_URL_LENGTH = 2048

_SCHEMES = {"http": 80, "https": 443}
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not globally reachable (IANA special-purpose registries), spelled out so the answer does not
# depend on which Python's `ipaddress` tables are installed.
_REFUSED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # this network, unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT (also Alibaba's metadata 100.100.100.200)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments (Oracle metadata 192.0.0.192)
        "192.0.2.0/24",
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
# Only global unicast (2000::/3) is public, minus these; embedded IPv4 is judged as IPv4.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


def validate_target_url(url: str, *, allow_private: bool) -> str:
    """The normalized URL (lower-case scheme and host, canonical IP literal, default port and
    fragment dropped, empty path as `/`); InvalidInput(field="url") if it is malformed,
    UnsafeTarget if it names a refused host and `allow_private` is False."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url is longer than {MAX_URL_LENGTH} characters", field="url")
    if any(_is_control_or_space(char) for char in url):
        raise InvalidInput("url contains whitespace or control characters", field="url")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"url is not valid: {exc}", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise InvalidInput("url scheme must be http or https", field="url")
    if "@" in parts.netloc:
        raise InvalidInput("url must not contain credentials (user:password@)", field="url")
    host_text, port = _split_authority(parts.netloc)
    host = _parse_host(host_text)
    if not allow_private:
        _check_host_is_public(host)
    shown_host = f"[{host.compressed}]" if isinstance(host, ipaddress.IPv6Address) else str(host)
    shown_port = "" if port is None or port == _SCHEMES[scheme] else f":{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{shown_host}{shown_port}{parts.path or '/'}{query}"


def is_public_address(ip: str) -> bool:
    """Whether a resolved address may receive webhooks: globally reachable unicast, not
    metadata. False for anything that is not an IP address; never raises."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return _is_public(address)


def _is_public(address: IPAddress) -> bool:
    if address in METADATA_ADDRESSES:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _is_public(embedded)
        if address.scope_id or address not in _GLOBAL_UNICAST_V6:
            return False
        return not any(address in network for network in _REFUSED_V6)
    if any(address in network for network in _REFUSED_V4):
        return False
    return address.is_global and not address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _check_host_is_public(host: str | IPAddress) -> None:
    if isinstance(host, str):
        name = host.rstrip(".")
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            raise UnsafeTarget(f"url host {host} is local", field="url")
    elif not _is_public(host):
        raise UnsafeTarget(
            f"url host {host} is not a public address (loopback, private, link-local, "
            "multicast, reserved or metadata)",
            field="url",
        )


def _split_authority(netloc: str) -> tuple[str, int | None]:
    """(host, port) of `host[:port]` or `[v6][:port]`."""
    if netloc.startswith("["):
        inner, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidInput("url host is not valid", field="url")
        host, port_text = f"[{inner}]", rest[1:]
    else:
        host, _, port_text = netloc.partition(":")
    if not port_text:
        return host, None
    if not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise InvalidInput("url port must be a number from 1 to 65535", field="url")
    return host, int(port_text)


def _parse_host(text: str) -> str | IPAddress:
    """A lower-case ASCII hostname, or the IP address the host denotes in any spelling."""
    if not text:
        raise InvalidInput("url must have a host", field="url")
    if text.startswith("["):
        inner = text[1:-1]
        if "%" in inner:
            raise InvalidInput("url must not carry an IPv6 zone id", field="url")
        try:
            return ipaddress.IPv6Address(inner)
        except ValueError:
            raise InvalidInput("url host is not a valid IPv6 address", field="url") from None
    host = text.lower()
    if not host.isascii():
        try:
            # IDNA also maps full-width digits and ideographic dots, so 127。0。0。1 is caught.
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInput("url host is not a valid domain name", field="url") from None
    if not _HOSTNAME.fullmatch(host.removesuffix(".")):
        raise InvalidInput("url host is not a valid domain name", field="url")
    ipv4 = _parse_ipv4(host)
    if ipv4 is not None:
        return ipv4
    if len(host.removesuffix(".")) > 253 or any(len(label) > 63 for label in host.split(".")):
        raise InvalidInput("url host is too long for a domain name", field="url")
    return host


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a host denotes if it is an IPv4 literal as WHATWG URLs and `inet_aton`
    read them (`127.1`, `0x7f.1`, `0177.0.0.1`, `2130706433`); None for a domain name."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not (_DIGITS.fullmatch(parts[-1]) or _HEX.fullmatch(parts[-1])):
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]):
        raise InvalidInput("url host is not a valid IPv4 address", field="url")
    if numbers[-1] >= 256 ** (5 - len(numbers)):
        raise InvalidInput("url host is not a valid IPv4 address", field="url")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int:
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if not _DIGITS.fullmatch(part):
        raise InvalidInput("url host is not a valid IPv4 address", field="url")
    if len(part) > 1 and part.startswith("0"):
        try:
            return int(part, 8)
        except ValueError:
            raise InvalidInput("url host is not a valid IPv4 address", field="url") from None
    return int(part)


def _is_control_or_space(char: str) -> bool:
    code = ord(char)
    return code <= 0x20 or 0x7F <= code <= 0x9F or char.isspace()
