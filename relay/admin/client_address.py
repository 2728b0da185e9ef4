"""The address a request came from, for per-client limits: the peer, or, only when the peer
is a proxy named in RELAY_TRUSTED_PROXIES, the last address in X-Forwarded-For that is not
one of those proxies (the one the first trusted proxy saw)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=64)
def _parse(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, *, trusted_proxies: tuple[str, ...]
) -> str:
    """Who to count a request against (see the module docstring); "unknown" without a peer."""
    address = peer or "unknown"
    networks = _parse(trusted_proxies)
    if not networks or not forwarded_for or not _is_trusted(address, networks):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, networks):
            return hop[:64]
    return address
