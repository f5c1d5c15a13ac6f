"""Which network addresses the bot may fetch from, enforced where the connection is made.

A provider's result URL is untrusted. Checking its name with one DNS look-up
and then letting the HTTP client look it up again to connect is a DNS
rebinding hole: the name may answer a public address to the check and a
loopback one to the connection. So the check lives *in* the resolver of the
downloader's own session (:class:`VettingResolver`): the answer that is vetted
is the answer the connector connects to, for every connection and every
redirect hop, and the URL's hostname is kept for TLS (SNI, certificate) and
the ``Host`` header. A URL whose host is an IP literal never reaches a
resolver (aiohttp connects to it directly), so :func:`literal_allowed` vets
those.

Only globally reachable unicast addresses pass. IPv6 forms that carry an IPv4
address (``::ffff:a.b.c.d`` mapped, ``::ffff:0:a.b.c.d`` translated,
``::a.b.c.d`` compatible, ``64:ff9b::/96`` NAT64, ``2002::/16`` 6to4) are
judged by the IPv4 address they carry, since a translator on the path
delivers them there; Teredo and local-use NAT64 (``64:ff9b:1::/48``) are
refused outright. Python 3.11's ``is_global`` calls several of these global.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]

_MAPPED: Final = ipaddress.ip_network("::ffff:0:0/96")
_TRANSLATED: Final = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE: Final = ipaddress.ip_network("::/96")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")


class AddressRefused(OSError):
    """A name or literal pointed at an address the policy refuses (private, loopback, ...)."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, compatible, NAT64, 6to4)."""
    if address in _MAPPED or address in _TRANSLATED or address in _COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_allowed(address: IPAddress) -> bool:
    """True for a globally reachable unicast address (IPv4 inside IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            return address_allowed(carried)
        if address in _NAT64_LOCAL or address.teredo is not None or address.scope_id:
            return False
    return address.is_global and not address.is_multicast


def allow_any(address: IPAddress) -> bool:
    """The policy of ``HAILUO_ALLOW_PRIVATE_URLS=1`` (tests, self-hosting): every address."""
    return True


def parse_address(text: str) -> IPAddress | None:
    """An address as a resolver or URL writes it (``[...]`` and ``%scope`` allowed), or None."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def is_literal(host: str) -> bool:
    """Whether aiohttp takes ``host`` for an IP literal and connects without resolving it."""
    return ":" in host or host.replace(".", "").isdigit()


def literal_allowed(host: str, policy: AddressPolicy) -> bool:
    """For a literal host: whether ``policy`` allows it (an unreadable literal never does)."""
    address = parse_address(host)
    return address is not None and policy(address)


class VettingResolver(AbstractResolver):
    """Resolves through ``inner`` and refuses the whole answer if any address is refused.

    Refusing the whole answer, not only the bad addresses, also closes the
    variant where one answer holds a public and a loopback address and the
    client falls back to the second when the first does not connect.
    """

    def __init__(self, inner: AbstractResolver, policy: AddressPolicy, *, owns_inner: bool) -> None:
        self.inner = inner
        self.policy = policy
        self._owns_inner = owns_inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self.inner.resolve(host, port, family)
        if not answers:
            raise OSError(f"{host} has no address")
        for answer in answers:
            address = parse_address(answer["host"])
            if address is None or not self.policy(address):
                raise AddressRefused(f"{host} resolves to a refused address")
        return answers

    async def close(self) -> None:
        if self._owns_inner:
            await self.inner.close()
