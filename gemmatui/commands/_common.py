"""What ``ask``, ``pull``, ``models``, ``fit`` and ``serve`` share: where the engine is
and which one, which context to plan for, and the fit report that picks a variant.

Imports only the standard library and light ``gemmatui.core`` modules at module level;
the fit, the hardware probe and the engine clients are imported when first needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gemmatui.core.config import Settings, load_settings, resolve_engine
from gemmatui.core.errors import NoSuitableModel, OllamaUnavailable, UsageError
from gemmatui.core.hosts import resolve_host

if TYPE_CHECKING:
    import argparse

    from gemmatui.core.catalog import Variant
    from gemmatui.core.engine import Engine
    from gemmatui.core.fit import FitReport, VariantFit
    from gemmatui.core.ollama import OllamaClient
    from gemmatui.core.server_settings import ServerEnv
    from gemmatui.core.types import HardwareSnapshot, InstalledModel, ModelDetails


@dataclass(frozen=True)
class Target:
    """The user's settings and the engine a command talks to."""

    settings: Settings
    host: str
    host_source: str  # "--host", "OLLAMA_HOST", "config" or "default"
    engine: str = "auto"  # "auto", "ollama" or "llama-server"
    engine_source: str = "default"  # "--engine", "GEMMATUI_ENGINE", "config" or "default"

    def client(self) -> OllamaClient:
        """An Ollama client for :attr:`host` with the default (generous) timeouts."""
        from gemmatui.core.ollama import OllamaClient

        return OllamaClient(self.host)

    async def connect(self, *, read_timeout: float = 300.0, look_elsewhere: bool = True) -> Engine:
        """The engine at :attr:`host` through the port (:func:`gemmatui.core.engine.connect`).

        When the host is the default one (nothing chose it), an engine found at
        llama-server's or LM Studio's default address is used instead of a silent
        Ollama address (``--engine auto``), and a line on stderr says so.
        """
        from gemmatui.core.engine import connect

        return await connect(
            self.host,
            self.engine,
            look_elsewhere=look_elsewhere and self.host_source == "default",
            say=say,
            read_timeout=read_timeout,
        )

    def server_env(self) -> ServerEnv:
        """The settings the server runs with (see :mod:`gemmatui.core.server_settings`)."""
        from gemmatui.core.server_settings import read_server_env

        return read_server_env(self.host)


def load_target(args: argparse.Namespace) -> Target:
    """Read the config file and resolve the host (``--host``, ``OLLAMA_HOST``, config,
    default) and the engine (``--engine``, ``GEMMATUI_ENGINE``, config, ``auto``)."""
    settings = load_settings()
    host, source = resolve_host(getattr(args, "host", None), os.environ, settings)
    engine, engine_source = resolve_engine(getattr(args, "engine", None), os.environ, settings)
    return Target(settings, host, source, engine, engine_source)


def say(line: str) -> None:
    """One line for the user on stderr, ``gemmatui: ...`` (notes, never errors)."""
    import sys

    print(f"gemmatui: {line}", file=sys.stderr)


async def served_model(
    engine: Engine, named: str | None, ctx: int | None
) -> tuple[str, int]:
    """The model and context of an engine that serves one model (llama-server).

    A llama-server serves the model it was started with, at the context it was started
    with: a request cannot change either. Says so on stderr when ``--model`` named
    another model, or ``--ctx`` asked for more than the server has.

    Args:
        engine: A fixed-model engine (``await engine.served()`` is not ``None``).
        named: What ``--model`` named (its full tag), or ``None``.
        ctx: ``--ctx``, or ``None``.

    Returns:
        ``(model, context per slot)``; the context is 0 when the server does not say
        (an OpenAI-compatible server other than llama-server).
    """
    from gemmatui.core.units import format_ctx

    served = await engine.served()
    assert served is not None
    model = served.model
    if named is not None and named != model:
        say(
            f"{engine.name} at {engine.host} serves {model} (the model it was started "
            f"with), not {named}; asking {model}"
        )
    if ctx is not None and served.n_ctx and ctx > served.n_ctx:
        say(
            f"{engine.name} at {engine.host} runs {format_ctx(served.n_ctx)} of context per "
            f"slot (fixed when it started: -c); --ctx {format_ctx(ctx)} cannot change it"
        )
    return model, served.n_ctx


def parse_ctx_option(value: str | None) -> int | None:
    """``--ctx`` as tokens (``32k`` = 32768), or ``None`` when not given.

    Raises:
        UsageError: The value is not a context length.
    """
    if value is None:
        return None
    from gemmatui.core.units import UnitError, parse_ctx

    try:
        return parse_ctx(value)
    except UnitError as err:
        raise UsageError(str(err).replace("context length", "--ctx", 1)) from None


@contextmanager
def name_the_host(target: Target) -> Iterator[None]:
    """Add where the host came from to "cannot reach ..." (unless it is the default)."""
    try:
        yield
    except OllamaUnavailable as err:
        if target.host_source == "default":
            raise
        raise OllamaUnavailable(f"{err} (host from {target.host_source})") from err


def fit_report(
    target: Target,
    *,
    ctx: int | None,
    installed: Mapping[str, InstalledModel] | None = None,
    details: Mapping[str, ModelDetails] | None = None,
    kv_type: str | None = None,
    num_parallel: int | None = None,
    flash_attention: bool | None = None,
    hardware: HardwareSnapshot | None = None,
    variants: tuple[Variant, ...] | None = None,
) -> FitReport:
    """Plan every Gemma 3 QAT variant on this machine for the server's settings.

    Args:
        target: Host (for the server's settings) and config (context, KV cache type).
        ctx: ``--ctx``, which beats the config's ``num_ctx``; ``None`` lets the
            config or Ollama's default decide.
        installed: Installed models by tag; their exact sizes replace the catalogue's.
        details: ``/api/show`` of installed models by tag; their GGUF architecture
            keys replace the catalogue's.
        kv_type, num_parallel, flash_attention: flags that beat the server's settings.
        hardware: plan for this machine instead of probing (``fit --vram``).
        variants: plan these instead of the catalogue's (``fit --gguf``).

    With ``target.engine == "llama-server"`` the plan is for a llama-server that
    gemmatui starts (``serve``): Ollama's server settings do not apply, and the
    defaults are named as gemmatui's.

    Returns:
        The fit report; ``report.settings.num_ctx`` is the context to send.
    """
    from gemmatui.core.catalog import variants_as_installed
    from gemmatui.core.fit import layered_settings, plan
    from gemmatui.core.hardware import probe_hardware

    if target.engine == "llama-server":
        env: Mapping[str, str] = {}
        env_source = "environment"
    else:
        server = target.server_env()
        env, env_source = server.values, server.source
    settings = layered_settings(
        env,
        env_source,
        config_ctx=target.settings.num_ctx,
        config_kv=target.settings.kv_cache_type,
        ctx=ctx,
        kv_type=kv_type,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
    )
    if variants is None:
        variants = variants_as_installed(installed, details)
    report = plan(hardware or probe_hardware(), settings, variants)
    if target.engine == "llama-server":
        report = _llama_server_names(report)
    return report


def _llama_server_names(report: FitReport) -> FitReport:
    """A plan for llama-server: what ``plan`` filled in as "Ollama default for this
    VRAM" / "Ollama auto" is gemmatui's choice there (the same rules)."""
    from dataclasses import replace

    import re

    sources = {
        key: value.replace("Ollama default", "gemmatui default").replace(
            "Ollama auto", "auto"
        )
        for key, value in report.settings.sources.items()
    }
    hint = report.hint and re.sub(r"start Ollama with OLLAMA_KV_CACHE_TYPE=\S+; ", "", report.hint)
    return replace(report, settings=replace(report.settings, sources=sources), hint=hint)


def suggested(report: FitReport) -> VariantFit | None:
    """The variant to pull: the largest that fits fully on the GPU, else the fit's fallback."""
    return report.recommended or report.fallback


def choose_installed(report: FitReport, installed: Mapping[str, InstalledModel]) -> VariantFit:
    """The largest installed variant that suits this machine.

    "Suits" means it fits fully on the GPU; when no variant does (no GPU, or a small
    one), the fit's fallback or anything smaller that still runs.

    Raises:
        NoSuitableModel: Nothing suitable is installed; the message says what to pull.
    """
    if report.recommended is not None:
        ok = [r for r in report.rows if r.verdict == "gpu"]
    elif report.fallback is not None:
        limit = report.fallback.variant.blob_bytes
        ok = [
            r
            for r in report.rows
            if r.verdict in ("partial", "cpu") and r.variant.blob_bytes <= limit
        ]
    else:
        ok = []
    for row in sorted(ok, key=lambda r: r.variant.blob_bytes, reverse=True):
        if row.variant.tag in installed:
            return row
    pick = suggested(report)
    if pick is None:
        raise NoSuitableModel(f"no Gemma 3 QAT variant can run on this machine: {report.reason}")
    have = ", ".join(sorted(installed)) or "none"
    raise NoSuitableModel(
        f"no installed Gemma 3 QAT model suits this machine (installed: {have}); pull one first: "
        f"gemmatui pull {pick.variant.key}, or choose one with --model"
    )
