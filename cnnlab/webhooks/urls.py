"""Which webhook URLs cnnlab sends to: http(s) only, and never to an address a server operator
would not expect (private, loopback, link-local, multicast, reserved) unless the settings'
``webhook_allow_private`` says so. Checked when a webhook is created and again before every
delivery (what a name resolves to may change), on every address the name resolves to.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from cnnlab.errors import CnnlabError

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def parse(url: str) -> tuple[str, str, int]:
    """The URL's scheme, host and port; :class:`UnsafeWebhookUrl` when it is not one to use."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeWebhookUrl(f"not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeWebhookUrl("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeWebhookUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeWebhookUrl("credentials in the URL are not allowed")
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


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
