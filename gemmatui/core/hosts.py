"""Where the Ollama server is: parse ``--host`` / ``OLLAMA_HOST`` the way Ollama does.

Ollama's own rules (``envconfig.Host`` in the server, also used by the ``ollama`` CLI):
the value may be ``host``, ``host:port``, ``:port`` or ``scheme://host[:port][/path]``;
quotes and spaces around it are ignored; a missing scheme means ``http``; a missing
port means 11434, or 80 / 443 when the scheme is written out as ``http`` / ``https``;
an empty value means ``127.0.0.1:11434``.

A server listens on a bind-all address (``0.0.0.0``, ``::``), but a client cannot
connect to one, so those become loopback here (the ``ollama`` CLI does the same; the
Python client does not).

Two deliberate differences from Ollama, both to turn a silent wrong connection into
a clear message: a port that is not a number from 0 to 65535, and a scheme other than
http/https, raise :class:`~gemmatui.core.errors.UsageError` (Ollama quietly falls back
to the default port and keeps the scheme).

Pure functions only; nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gemmatui.core.errors import UsageError

if TYPE_CHECKING:
    from gemmatui.core.config import Settings

DEFAULT_PORT = 11434
DEFAULT_HOST = f"http://127.0.0.1:{DEFAULT_PORT}"

_SCHEME_PORTS = {"http": 80, "https": 443}
_BIND_ALL = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def parse_host(value: str | None) -> str:
    """Turn an ``OLLAMA_HOST``-style value into the base URL to connect to.

    Args:
        value: What the user wrote (flag, environment or config), or ``None``.

    Returns:
        ``scheme://host:port`` with an optional ``/path``, without a trailing slash.
        IPv6 addresses are bracketed; bind-all addresses are turned into loopback.

    Raises:
        UsageError: The port is not a number in 0..65535, or the scheme is not
            http or https.

    ====================================  ==================================
    value                                 result
    ====================================  ==================================
    ``None`` / ``""``                     ``http://127.0.0.1:11434``
    ``example.com``                       ``http://example.com:11434``
    ``example.com:8080``                  ``http://example.com:8080``
    ``:8080``                             ``http://127.0.0.1:8080``
    ``http://example.com``                ``http://example.com:80``
    ``https://example.com``               ``https://example.com:443``
    ``https://example.com:8443/ollama/``  ``https://example.com:8443/ollama``
    ``0.0.0.0``                           ``http://127.0.0.1:11434``
    ``[::]:11434``                        ``http://[::1]:11434``
    ``[fe80::0001]``                      ``http://[fe80::1]:11434``
    ====================================  ==================================

    >>> parse_host(None)
    'http://127.0.0.1:11434'
    >>> parse_host("  'example.com'  ")
    'http://example.com:11434'
    >>> parse_host("example.com:8080")
    'http://example.com:8080'
    >>> parse_host(":8080")
    'http://127.0.0.1:8080'
    >>> parse_host("http://example.com"), parse_host("https://example.com")
    ('http://example.com:80', 'https://example.com:443')
    >>> parse_host("https://example.com:8443/ollama/")
    'https://example.com:8443/ollama'
    >>> parse_host("0.0.0.0"), parse_host("[::]:11434"), parse_host("::")
    ('http://127.0.0.1:11434', 'http://[::1]:11434', 'http://[::1]:11434')
    >>> parse_host("[fe80::0001]")
    'http://[fe80::1]:11434'
    """
    text = (value or "").strip().strip("\"'").strip()
    scheme, sep, hostport = text.partition("://")
    if sep:
        scheme = scheme.lower()
        if scheme not in _SCHEME_PORTS:
            raise UsageError(f"invalid Ollama host {text!r}: the scheme must be http or https")
        default_port = _SCHEME_PORTS[scheme]
    else:
        scheme, hostport, default_port = "http", text, DEFAULT_PORT
    hostport, _, path = hostport.partition("/")
    host, port_text = _split_host_port(hostport)
    if not host:
        host = "127.0.0.1"
    port = _parse_port(port_text, default_port, text)
    host = _BIND_ALL.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    path = path.strip("/")
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "")


def _split_host_port(hostport: str) -> tuple[str, str]:
    """Split ``host[:port]`` like Go's ``net.SplitHostPort`` with Ollama's fallback.

    Returns the host (IP addresses normalised, IPv6 without brackets) and the port
    text ("" when none was given).
    """
    if hostport.startswith("["):
        inside, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UsageError(
                f"invalid Ollama host {hostport!r}: unbalanced [] around an IPv6 address"
            )
        host, port = inside, rest[1:]
    elif hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
    else:  # a name, an IPv4 address, or a bare IPv6 address such as "::1"
        host, port = hostport, ""
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if ":" in host or not all(c.isalnum() or c in "-._" for c in host):
            raise UsageError(
                f"invalid Ollama host {hostport!r}: use host, host:port or [IPv6]:port"
            ) from None
    return host, port


def _parse_port(port_text: str, default: int, shown: str) -> int:
    if not port_text:
        return default
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(
            f"invalid Ollama host {shown!r}: the port must be a number from 0 to 65535"
        )
    return int(port_text)


def resolve_host(
    flag: str | None,
    env: Mapping[str, str] = os.environ,
    settings: Settings | None = None,
) -> tuple[str, str]:
    """Pick the Ollama URL: ``--host``, then ``OLLAMA_HOST``, then config, then default.

    An empty or blank value counts as not set, as it does for Ollama.

    Args:
        flag: The ``--host`` value, if any.
        env: The environment to read ``OLLAMA_HOST`` from.
        settings: The loaded user settings (its ``host``), if any.

    Returns:
        ``(url, where)`` where ``where`` is ``"--host"``, ``"OLLAMA_HOST"``,
        ``"config"`` or ``"default"``.

    >>> resolve_host(None, {"OLLAMA_HOST": "0.0.0.0:11500"})
    ('http://127.0.0.1:11500', 'OLLAMA_HOST')
    >>> resolve_host(None, {})
    ('http://127.0.0.1:11434', 'default')
    """
    candidates = (
        (flag, "--host"),
        (env.get("OLLAMA_HOST"), "OLLAMA_HOST"),
        (settings.host if settings is not None else None, "config"),
    )
    for value, where in candidates:
        if value is not None and value.strip().strip("\"'").strip():
            return parse_host(value), where
    return DEFAULT_HOST, "default"


def is_local(url: str) -> bool:
    """Whether ``url`` points at this machine (loopback, ``localhost`` or our hostname).

    Local servers are the ones whose process settings and model directory we can read.

    >>> is_local("http://127.0.0.1:11434"), is_local("http://[::1]:11434")
    (True, True)
    >>> is_local("http://localhost:11434"), is_local("http://192.0.2.7:11434")
    (True, False)
    """
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    import socket

    return host == socket.gethostname().lower()


def http_options(host: str, *, read_timeout: float, connect_timeout: float) -> dict[str, Any]:
    """The ``httpx`` client settings every gemmatui client of ``host`` uses.

    Explicit timeouts (connecting fails fast, a read may wait for a model load); like
    Ollama's own CLI, no HTTP proxy from the environment for a loopback host; and for a
    plain-http host a TLS context that trusts no certificate, because httpx otherwise
    loads the CA bundle for every client it creates (about 50 ms on a slow machine)
    for a host that never uses TLS (a redirect to https then fails, never passes).
    """
    import ssl

    import httpx

    verify: ssl.SSLContext | bool = (
        True if host.startswith("https://") else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    )
    return {
        "timeout": httpx.Timeout(read_timeout, connect=connect_timeout),
        "trust_env": not is_local(host),
        "verify": verify,
    }
