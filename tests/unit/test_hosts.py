"""Host parsing follows Ollama's envconfig.Host, with bind-all addresses made loopback."""

from __future__ import annotations

import doctest

import pytest

from gemmatui.core import hosts
from gemmatui.core.config import Settings
from gemmatui.core.errors import UsageError
from gemmatui.core.hosts import is_local, parse_host, resolve_host


@pytest.mark.parametrize(
    ("value", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        ("   ", "http://127.0.0.1:11434"),
        ('"127.0.0.1:11500"', "http://127.0.0.1:11500"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("1.2.3.4:56789", "http://1.2.3.4:56789"),
        ("http://1.2.3.4", "http://1.2.3.4:80"),
        ("https://1.2.3.4", "https://1.2.3.4:443"),
        ("HTTPS://1.2.3.4", "https://1.2.3.4:443"),
        ("https://1.2.3.4:56789", "https://1.2.3.4:56789"),
        ("example.com", "http://example.com:11434"),
        ("example.com:56789", "http://example.com:56789"),
        ("example.com:", "http://example.com:11434"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("example.com/", "http://example.com:11434"),
        ("example.com/path", "http://example.com:11434/path"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("https://example.com:56789/a/b", "https://example.com:56789/a/b"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("http://0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("::", "http://[::1]:11434"),
        ("[::]", "http://[::1]:11434"),
        ("[::]:11434", "http://[::1]:11434"),
        ("::1", "http://[::1]:11434"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("[0001:002:003:0004::1]", "http://[1:2:3:4::1]:11434"),
        ("https://[0001:002:003:0004::1]:56789/path", "https://[1:2:3:4::1]:56789/path"),
        ("localhost", "http://localhost:11434"),
    ],
)
def test_parse_host_table(value: str | None, url: str) -> None:
    assert parse_host(value) == url


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("localhost:abc", "the port must be a number"),
        ("localhost:70000", "the port must be a number"),
        ("ftp://example.com", "the scheme must be http or https"),
        ("[::1", "unbalanced []"),
        ("a:b:c", "use host, host:port"),
        ("exa mple.com", "use host, host:port"),
        ("%zz", "use host, host:port"),
        ("http://a:b:c:11434", "use host, host:port"),
    ],
)
def test_parse_host_rejects_what_would_connect_somewhere_else(value: str, why: str) -> None:
    with pytest.raises(UsageError, match=r"invalid Ollama host") as err:
        parse_host(value)
    assert why in str(err.value)


@pytest.mark.parametrize(
    ("flag", "env", "config", "expected"),
    [
        (":1", {"OLLAMA_HOST": ":2"}, ":3", ("http://127.0.0.1:1", "--host")),
        (None, {"OLLAMA_HOST": ":2"}, ":3", ("http://127.0.0.1:2", "OLLAMA_HOST")),
        (None, {"OLLAMA_HOST": "  "}, ":3", ("http://127.0.0.1:3", "config")),
        (None, {}, ":3", ("http://127.0.0.1:3", "config")),
        (None, {}, None, ("http://127.0.0.1:11434", "default")),
        ("", {}, "", ("http://127.0.0.1:11434", "default")),
    ],
)
def test_resolve_host_precedence(
    flag: str | None, env: dict, config: str | None, expected: tuple
) -> None:
    assert resolve_host(flag, env, Settings(host=config)) == expected


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:11434", True),
        ("http://127.8.9.10:11434", True),
        ("http://[::1]:11434", True),
        ("http://localhost:11434", True),
        ("http://ollama.localhost:11434", True),
        ("http://192.0.2.7:11434", False),
        ("https://ollama.example.com:443", False),
    ],
)
def test_is_local(url: str, local: bool) -> None:
    assert is_local(url) is local


def test_doctests() -> None:
    result = doctest.testmod(hosts)
    assert result.attempted > 5 and result.failed == 0


def test_is_local_never_raises_on_a_bad_url() -> None:
    assert is_local("http://[a:b:c]:11434") is False

