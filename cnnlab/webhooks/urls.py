"""Which webhook URLs cnnlab sends to: http(s) only, and never to an address a server operator
would not expect (private, loopback, link-local, multicast, reserved) unless the settings'
``webhook_allow_private`` says so. Checked when a webhook is created and again before every
delivery (what a name resolves to may change), on every address the name resolves to.

A URL is parsed by the parser that sends it (``httpx.URL``), so one accepted here is one the
dispatcher can send; control characters are refused outright. An IPv6 address that carries an
IPv4 one (IPv4-mapped, 6to4 ``2002::/16``, Teredo ``2001::/32``) is judged by that IPv4 address
too, and the old site-local ``fec0::/10`` and IETF protocol assignments ``192.0.0.0/24`` are
never public.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import httpx

from cnnlab.errors import CnnlabError

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Special-purpose blocks Python's ``is_global`` does not (in every version) call non-global.
_NEVER_PUBLIC = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (RFC 6890)
    ipaddress.ip_network("fec0::/10"),  # site-local (deprecated, still routed on some networks)
)


class InvalidWebhook(CnnlabError):
    """A webhook cnnlab does not take (422; ``field`` says which part)."""

    code = "invalid_request"
    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class UnsafeWebhookUrl(InvalidWebhook):
    """A webhook URL cnnlab will not send to."""

    def __init__(self, message: str) -> None:
        super().__init__("url", message)


@dataclass(frozen=True)
class Target:
    """A checked URL: its scheme, host, port and the addresses its host resolved to (the
    request goes to the first, so a name that changes between check and connect cannot move
    it)."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo's server and client)."""
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif inner and not all(is_public(a) for a in inner):
            return False
    if any(address in network for network in _NEVER_PUBLIC):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


def parse(url: str) -> tuple[str, str, int]:
    """The URL's scheme, host and port as ``httpx.URL`` (the sender) reads them;
    :class:`UnsafeWebhookUrl` when it is not one to use."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UnsafeWebhookUrl("control characters are not allowed in a URL")
    try:
        parts = httpx.URL(url)
        port = parts.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeWebhookUrl(f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeWebhookUrl("only http and https URLs are allowed")
    if not parts.host:
        raise UnsafeWebhookUrl("the URL has no host")
    if parts.userinfo:
        raise UnsafeWebhookUrl("credentials in the URL are not allowed")
    return scheme, parts.host, port or _DEFAULT_PORTS[scheme]


def resolve(host: str, port: int) -> tuple[str, ...]:
    """Every address ``host`` resolves to (a literal address: itself)."""
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeWebhookUrl(f"host {host!r} does not resolve ({exc})") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise UnsafeWebhookUrl(f"host {host!r} does not resolve")
    return addresses


def check_url(url: str, *, allow_private: bool) -> Target:
    """Parse and resolve ``url``; refuse it when any address it resolves to is not public
    (unless ``allow_private``)."""
    scheme, host, port = parse(url)
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address)):
                raise UnsafeWebhookUrl(
                    f"{host!r} resolves to {address}, a private, loopback or link-local "
                    "address; webhooks are only sent to public addresses "
                    "(CNNLAB_WEBHOOK_ALLOW_PRIVATE=1 allows others)"
                )
    return Target(scheme, host, port, addresses)
