"""Where webhooks (and HTTP tools) may go: http(s) URLs whose host resolves only to public
addresses.

A callback URL is chosen by whoever submits a run (or by an admin, as a team's default), and
a worker inside the deployment POSTs to it: without a guard, a way to reach the cloud's
metadata service (169.254.169.254), the database, Redis or an admin port on localhost
(server-side request forgery). So, unless ``WEBHOOK_ALLOW_PRIVATE_HOSTS`` is on:

- at submit time a URL whose host *is or resolves to* a loopback, private, link-local,
  multicast, reserved or otherwise not globally routable address (IPv4 or IPv6, also
  IPv4 embedded in IPv6) is refused (``check``), with a message for the ``callback_url``
  field. A name that does not resolve yet is let through: delivery checks it again;
- at delivery time the name is resolved *once*, every address is checked, and the request
  goes to a checked address (``destinations``): DNS may answer differently than at submit
  time, or differently on each lookup (DNS rebinding), so the HTTP client must never look
  the name up again. The original ``Host`` header and TLS server name are kept.

``WEBHOOK_ALLOW_PRIVATE_HOSTS`` is on by default only on the embedded default and with
DEBUG (``make run``, tests with a receiver on 127.0.0.1); it skips the address check, not
the scheme check, and deliveries still go to the address resolved once.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Not globally routable, though Python's ``is_global`` says otherwise for some of them.
EXTRA_REFUSED = [ipaddress.ip_network(n) for n in (
    "192.0.0.0/24",  # IETF protocol assignments
    "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
)]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedURL(ValueError):
    """A callback URL webhooks must not be sent to; the message says why."""


@dataclass(frozen=True)
class Destination:
    """One checked address to send a request for ``url`` to."""

    url: str  # the callback URL with the host replaced by the address
    headers: dict[str, str]  # Host: the original host (and port)
    extensions: dict[str, Any] = field(default_factory=dict)  # TLS server name


def allow_private() -> bool:
    return settings.WEBHOOK_ALLOW_PRIVATE_HOSTS


def refusal(ip: IPAddress) -> str | None:
    """Why webhooks must not go to ``ip`` (None when it is a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal(embedded)
            if inner:
                return f"{inner} (embedded in {ip})"
    checks = [
        (ip.is_unspecified, "unspecified"), (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"), (ip.is_multicast, "multicast"),
        (ip.is_private, "private"), (ip.is_reserved, "reserved"),
        (any(ip in net for net in EXTRA_REFUSED if net.version == ip.version), "reserved"),
        (not ip.is_global, "not globally routable"),
    ]
    return next((f"a {name} address" for bad, name in checks if bad), None)


def parse(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL; RefusedURL for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedURL("Not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RefusedURL("Only http and https callback URLs are allowed.")
    if not parts.hostname:
        raise RefusedURL("The URL has no host.")
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (itself when it is an address), each once, in the
    resolver's order. Raises OSError (``socket.gaierror``) when the name does not resolve."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found: list[IPAddress] = []
    for _, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone
        if ip not in found:
            found.append(ip)
    if not found:
        raise socket.gaierror(f"{host} has no address")
    return found


WEBHOOKS = "callback host", "webhooks are only sent to public addresses"
HTTP_TOOLS = "tool's host", "HTTP tools only call public addresses"


def checked(host: str, addresses: list[IPAddress],
            purpose: tuple[str, str] = WEBHOOKS) -> list[IPAddress]:
    """``addresses`` when every one is allowed; RefusedURL naming the first that is not."""
    if allow_private():
        return addresses
    for ip in addresses:
        why = refusal(ip)
        if why:
            shown = f"{host} is" if host == str(ip) else f"{host} resolves to {ip},"
            raise RefusedURL(f"The {purpose[0]} {shown} {why}: {purpose[1]}.")
    return addresses


def check(url: str, purpose: tuple[str, str] = WEBHOOKS) -> None:
    """At submit time (API, services, admin): RefusedURL when webhooks must not go to
    ``url``. A name that does not resolve now passes; delivery checks it again."""
    scheme, host, port = parse(url)
    if allow_private():
        return
    try:
        addresses = resolve(host, port)
    except OSError:
        return
    checked(host, addresses, purpose)


def destinations(url: str, purpose: tuple[str, str] = WEBHOOKS) -> list[Destination]:
    """At delivery time: resolve ``url``'s host once, check every address, and say where
    to send the request — to each address in turn, never to the name again.

    Raises RefusedURL (refused: do not retry) or OSError (the name did not resolve: a
    transient failure, retried like a refused connection)."""
    scheme, host, port = parse(url)
    parts = urlsplit(url)
    addresses = checked(host, resolve(host, port), purpose)
    userinfo = parts.netloc.rpartition("@")[0]
    host_header = parts.netloc.rpartition("@")[2]  # as the URL wrote it, port included
    out = []
    for ip in addresses:
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = (f"{userinfo}@" if userinfo else "") + literal + (
            f":{parts.port}" if parts.port else "")
        is_name = host != str(ip)
        extensions = {"sni_hostname": host} if scheme == "https" and is_name else {}
        out.append(Destination(url=urlunsplit(parts._replace(netloc=netloc)),
                               headers={"Host": host_header}, extensions=extensions))
    return out
