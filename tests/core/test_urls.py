from __future__ import annotations

import pytest

from relay.core.errors import InvalidInput, UnsafeTarget
from relay.core.urls import is_public_address, validate_target_url

NORMALIZED = [
    ("https://example.com/hooks", "https://example.com/hooks"),
    ("HTTPS://Example.COM/Hooks?A=1", "https://example.com/Hooks?A=1"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com:443/x", "https://example.com/x"),
    ("http://example.com:80/x", "http://example.com/x"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("http://example.com:/x", "http://example.com/x"),
    ("https://example.com/x#fragment", "https://example.com/x"),
    ("https://example.com./x", "https://example.com./x"),
    ("https://hooks_1.example.com/x", "https://hooks_1.example.com/x"),
    ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
    ("https://8.8.8.8/x", "https://8.8.8.8/x"),
    ("https://134744072/x", "https://8.8.8.8/x"),  # decimal spelling of 8.8.8.8
    ("https://0x08.0x08.0x08.0x08/x", "https://8.8.8.8/x"),
    ("https://010.010.010.010/x", "https://8.8.8.8/x"),
    ("https://8.526344/x", "https://8.8.8.8/x"),
    ("https://[2606:4700:4700:0000::1111]/x", "https://[2606:4700:4700::1111]/x"),
    ("https://[::ffff:8.8.8.8]/x", "https://[::ffff:808:808]/x"),
    ("https://[64:ff9b::8.8.8.8]:8080/x", "https://[64:ff9b::808:808]:8080/x"),
]


@pytest.mark.parametrize(("url", "expected"), NORMALIZED)
def test_public_urls_are_accepted_and_normalized(url: str, expected: str) -> None:
    assert validate_target_url(url, allow_private=False) == expected


UNSAFE = [
    "http://localhost/x",
    "http://LOCALHOST:8080/x",
    "http://localhost./x",
    "http://api.localhost/x",
    "http://ip6-localhost/x",
    "http://127.0.0.1/x",
    "http://127.0.0.1./x",
    "http://127.1/x",
    "http://127.0.1/x",
    "http://2130706433/x",  # decimal
    "http://017700000001/x",  # octal, one part
    "http://0177.0.0.1/x",  # octal
    "http://0x7f.1/x",  # hex, short
    "http://0x7F000001/x",  # hex, one part
    "http://0x7f.0x0.0x0.0x1/x",
    "http://0/x",  # 0.0.0.0
    "http://0.0.0.0/x",
    "http://10.0.0.1/x",
    "http://172.16.5.4/x",
    "http://172.31.255.255/x",
    "http://192.168.1.1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1/x",
    "http://100.64.0.1/x",  # CGNAT
    "http://100.127.255.255/x",
    "http://100.100.100.200/x",  # Alibaba metadata
    "http://192.0.0.192/x",
    "http://192.0.2.1/x",
    "http://198.18.0.1/x",
    "http://224.0.0.1/x",
    "http://239.255.255.250/x",
    "http://240.0.0.1/x",
    "http://255.255.255.255/x",
    "http://[::1]/x",
    "http://[0:0:0:0:0:0:0:1]/x",
    "http://[::]/x",
    "http://[::ffff:127.0.0.1]/x",  # IPv4-mapped
    "http://[::ffff:7f00:1]/x",
    "http://[::ffff:169.254.169.254]/x",
    "http://[::127.0.0.1]/x",  # IPv4-compatible (deprecated)
    "http://[64:ff9b::127.0.0.1]/x",  # NAT64 of loopback
    "http://[64:ff9b::a9fe:a9fe]/x",  # NAT64 of metadata
    "http://[64:ff9b:1::a00:1]/x",  # local-use NAT64
    "http://[2002:7f00:1::]/x",  # 6to4 of loopback
    "http://[2002:c0a8:101::1]/x",  # 6to4 of 192.168.1.1
    "http://[2001:0::1]/x",  # Teredo
    "http://[2001:db8::1]/x",
    "http://[fd00:ec2::254]/x",  # AWS metadata over IPv6
    "http://[fc00::1]/x",
    "http://[fe80::1]/x",
    "http://[fec0::1]/x",
    "http://[ff02::1]/x",
    "http://[100::1]/x",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x",  # full-width digits
    "http://127\u30020\u30020\u30021/x",  # ideographic full stops
]


@pytest.mark.parametrize("url", UNSAFE)
def test_local_and_private_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget) as caught:
        validate_target_url(url, allow_private=False)
    assert caught.value.field == "url"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8080/x", "http://localhost:8080/x"),
        ("http://127.1:9000/hook", "http://127.0.0.1:9000/hook"),
        ("http://0x7f.1/x", "http://127.0.0.1/x"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
        ("http://192.168.1.10/x", "http://192.168.1.10/x"),
    ],
)
def test_private_targets_are_allowed_when_configured(url: str, expected: str) -> None:
    assert validate_target_url(url, allow_private=True) == expected


INVALID = [
    "",
    "example.com/x",
    "//example.com/x",
    "ftp://example.com/x",
    "file:///etc/passwd",
    "gopher://example.com/x",
    "javascript:alert(1)",
    "http:example.com",
    "http:///x",
    "http://:8080/x",
    "https://user:pass@example.com/x",
    "https://user@example.com/x",
    "https://:@example.com/x",
    "http://evil.com\\@127.0.0.1/x",
    "http://127.0.0.1\\.evil.com/x",
    "https://exa mple.com/x",
    "https://example.com/x y",
    " https://example.com/x",
    "https://example.com/x\n",
    "https://example.com/\tx",
    "https://example.com/\x00",
    "https://example.com/\x7f",
    "https://example.com/\x85",
    "https://example.com/\u00a0",
    "https://example.com:0/x",
    "https://example.com:65536/x",
    "https://example.com:http/x",
    "https://example.com:-1/x",
    "https://%31%32%37.0.0.1/x",
    "https://exa%2Dmple.com/x",
    "https://a..b/x",
    "https://.example.com/x",
    "https://example.123/x",
    "https://1.2.3.4.5/x",
    "https://256.0.0.1/x",
    "https://1.2.3.256/x",
    "https://1.2.65536/x",
    "https://4294967296/x",
    "https://08.0.0.1/x",  # not octal
    "https://0xg.0.0.1/x",
    "https://[::1/x",
    "https://[::1]x/",
    "https://[127.0.0.1]/x",
    "https://[fe80::1%25eth0]/x",
    "https://[v1.abc]/x",
    "https://::1/x",
    "https://" + "a" * 64 + ".com/x",
    "https://" + ".".join(["a" * 60] * 5) + "/x",
    "https://example.com/" + "a" * 2048,
]


@pytest.mark.parametrize("url", INVALID)
def test_malformed_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_target_url(url, allow_private=True)
    assert not isinstance(caught.value, UnsafeTarget)
    assert caught.value.field == "url"


def test_url_of_exactly_2048_characters_is_accepted() -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert validate_target_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # DNS64 answer for a public address
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_public(ip: str) -> None:
    assert is_public_address(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "192.0.0.192",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.251",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "2002:a00:1::1",
        "2001::1",
        "2001:db8::1",
        "3fff::1",
        "fd00:ec2::254",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "not-an-ip",
        "",
        "127.1",  # resolvers answer in dotted quads; anything else is refused
    ],
)
def test_private_or_invalid_addresses_are_not_public(ip: str) -> None:
    assert not is_public_address(ip)
