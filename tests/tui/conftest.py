"""Fixtures for the TUI tests: isolated config/data dirs, fixed hardware, the fake Ollama.

Every test gets its own ``GEMMATUI_CONFIG`` and ``GEMMATUI_DATA_DIR`` under ``tmp_path``
(autouse), and no ``OLLAMA_*`` variable of the developer's shell leaks into the fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import pytest

from gemmatui.core.catalog import get_variant
from gemmatui.core.config import Settings
from gemmatui.core.errors import OllamaUnavailable
from gemmatui.core.hardware import StaticProbe
from gemmatui.core.ollama import OllamaClient
from gemmatui.core.storage import ConversationStore
from gemmatui.core.types import (
    GpuInfo,
    HardwareSnapshot,
    InstalledModel,
    PullProgress,
    RunningModel,
)
from gemmatui.core.units import GiB, MiB
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.session import Connector, GgufChoice, Session
from tests.fake_ollama import FakeOllama

#: Terminal size of every Pilot and snapshot test.
SIZE = (120, 36)

_OLLAMA_VARS = (
    "OLLAMA_HOST",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_GPU_OVERHEAD",
)


def gpu_machine(
    name: str, vram_gib: int, free_gib: float, *, bus_bits: int, mem_mhz: int
) -> HardwareSnapshot:
    """One NVIDIA GPU and 64 GiB of RAM, described the way the NVML probe would."""
    total = vram_gib * GiB
    free = int(free_gib * GiB)
    gpu = GpuInfo(
        index=0,
        vendor="nvidia",
        name=name,
        total_bytes=total,
        free_bytes=free,
        used_bytes=total - free,
        driver_version="550.54.14",
        cuda_version="12.4",
        compute_capability=(8, 9),
        bus_width_bits=bus_bits,
        max_mem_clock_mhz=mem_mhz,
    )
    return HardwareSnapshot(
        gpus=(gpu,),
        ram_total_bytes=64 * GiB,
        ram_available_bytes=48 * GiB,
        backend="cuda",
        source="NVML 12.550",
        cpu_name="AMD Ryzen 9 7950X",
        cpu_count=32,
    )


GPU_24GB = gpu_machine("NVIDIA GeForce RTX 4090", 24, 23.5, bus_bits=384, mem_mhz=10501)
GPU_8GB = gpu_machine("NVIDIA GeForce RTX 4060", 8, 7.5, bus_bits=128, mem_mhz=8501)
NO_GPU = HardwareSnapshot(
    gpus=(),
    ram_total_bytes=32 * GiB,
    ram_available_bytes=24 * GiB + 512 * MiB,
    backend="cpu",
    source="psutil",
    notes=("NVML library not found: no NVIDIA driver", "no GPU found: CPU only"),
    cpu_name="Intel Core i7-1260P",
    cpu_count=16,
)


class ScriptedOllama:
    """A stand-in for :class:`OllamaClient` that answers from fixed data: no HTTP, no clocks.

    For snapshots and the pull view, where every byte on screen must be the same each run.

    Args:
        installed: Catalogue keys ("4b") reported by ``list_models``.
        up: ``False``: every call fails as if nothing listened at :attr:`host`.
        pull_script: Progress lines ``pull`` yields; then it ends (``hold=False``) or
            waits until cancelled (``hold=True``), so a view can be caught mid-download.
        pull_error: Raised by ``pull`` after the script, when given.
    """

    def __init__(
        self,
        *,
        installed: Iterable[str] = (),
        up: bool = True,
        pull_script: Iterable[PullProgress] = (),
        hold: bool = True,
        pull_error: Exception | None = None,
    ) -> None:
        self.host = "http://127.0.0.1:11434"
        self.up = up
        self.pull_script = tuple(pull_script)
        self.hold = hold
        self.pull_error = pull_error
        self._installed = [get_variant(key) for key in installed]

    def _check(self) -> None:
        if not self.up:
            raise OllamaUnavailable(
                f"cannot reach Ollama at {self.host}: is Ollama running? "
                "start it with `ollama serve`"
            )

    async def list_models(self) -> list[InstalledModel]:
        self._check()
        return [
            InstalledModel(v.tag, v.blob_bytes, "0" * 64, family="gemma3") for v in self._installed
        ]

    async def ps(self) -> list[RunningModel]:
        self._check()
        return []

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        self._check()
        for progress in self.pull_script:
            yield progress
        if self.pull_error is not None:
            raise self.pull_error
        if self.hold:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        """Nothing to close."""


LAYER = "sha256:" + "ab12" * 16
SMALL = "sha256:" + "cd34" * 16


def progress_script() -> list[PullProgress]:
    """A pull as Ollama streams it: the manifest, a 4 GiB layer at 0, 1 and 2 GiB, then a
    small layer that is already complete."""
    lines = [PullProgress("pulling manifest")]
    for done in (0, 1, 2):
        lines.append(
            PullProgress(
                f"pulling {LAYER[7:19]}", LAYER, 4 * GiB, done * GiB or None, 4 * GiB, done * GiB
            )
        )
    lines.append(
        PullProgress(f"pulling {SMALL[7:19]}", SMALL, 358, 358, 4 * GiB + 358, 2 * GiB + 358)
    )
    return lines


class SteppingClock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config and data at ``tmp_path`` and clear the Ollama variables."""
    monkeypatch.setenv("GEMMATUI_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("GEMMATUI_DATA_DIR", str(tmp_path / "data"))
    for name in _OLLAMA_VARS:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The config file the app saves to in this test."""
    return tmp_path / "config" / "config.toml"


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    """A fake Ollama with nothing installed; pulls finish at once."""
    with FakeOllama(pull_steps=5) as server:
        yield server


MakeApp = Callable[..., GemmaApp]


def _app(
    client: object,
    store: ConversationStore,
    config_file: Path,
    *,
    hardware: HardwareSnapshot,
    settings: Settings | None,
    fit_env: dict[str, str] | None,
    clock: Callable[[], float] | None,
) -> GemmaApp:
    return GemmaApp(
        client=client,  # type: ignore[arg-type]
        probe=StaticProbe(hardware),
        settings=settings or Settings(),
        store=store,
        fit_env=fit_env or {},
        fit_env_source="test",
        config_path=config_file,
        clock=clock or SteppingClock(),
    )


@pytest.fixture
async def make_app(tmp_path: Path, config_file: Path) -> AsyncIterator[MakeApp]:
    """Build a :class:`GemmaApp` on fixed hardware talking to the Ollama at ``url``.

    Call it as ``make_app(url, hardware=GPU_24GB, settings=Settings(...))``; the
    clients and stores it made are closed after the test.
    """
    clients: list[OllamaClient] = []
    stores: list[ConversationStore] = []

    def make(
        url: str,
        *,
        hardware: HardwareSnapshot = GPU_24GB,
        settings: Settings | None = None,
        fit_env: dict[str, str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> GemmaApp:
        client = OllamaClient(url, connect_timeout=1.0, read_timeout=5.0)
        clients.append(client)
        stores.append(ConversationStore(tmp_path / "data"))
        return _app(
            client,
            stores[-1],
            config_file,
            hardware=hardware,
            settings=settings,
            fit_env=fit_env,
            clock=clock,
        )

    yield make
    for client in clients:
        await client.aclose()
    for store in stores:
        store.close()


MakeSessionApp = Callable[..., GemmaApp]


@pytest.fixture
async def make_session_app(
    tmp_path: Path, config_file: Path
) -> AsyncIterator[MakeSessionApp]:
    """Build a :class:`GemmaApp` around a :class:`Session` whose engine is ``engine``
    (any adapter of the port), or is found at ``connect`` (a :class:`Connector`, as
    :func:`gemmatui.tui.app.build_app` wires it) with ``gguf`` given.

    Call it as ``make_session_app(engine=LlamaServerClient(url))`` or
    ``make_session_app(connect=Connector(url), gguf=GgufChoice.read(path))``; the
    sessions it made are closed after the test (a started llama-server is stopped).
    """
    sessions: list[Session] = []

    def make(
        *,
        engine: object | None = None,
        connect: Connector | None = None,
        gguf: GgufChoice | None = None,
        hardware: HardwareSnapshot = GPU_24GB,
        settings: Settings | None = None,
    ) -> GemmaApp:
        if engine is None:
            from gemmatui.core.engine import engine_for

            assert connect is not None
            kind = "ollama" if connect.engine == "auto" else connect.engine
            engine = engine_for(kind, connect.host, connect_timeout=1.0, read_timeout=5.0)
        session = Session(
            engine=engine,
            probe=StaticProbe(hardware),
            settings=settings or Settings(),
            store=ConversationStore(tmp_path / "data"),
            fit_env={},
            fit_env_source="test",
            config_path=config_file,
            clock=SteppingClock(),
            connector=connect,
            gguf=gguf,
        )
        sessions.append(session)
        return GemmaApp(session=session)

    yield make
    for session in sessions:
        await session.aclose()


@pytest.fixture
def scripted_app(tmp_path: Path, config_file: Path) -> Iterator[Callable[..., GemmaApp]]:
    """Build a :class:`GemmaApp` around a :class:`ScriptedOllama` (for snapshots; sync tests).

    Call it as ``scripted_app(ScriptedOllama(...), hardware=GPU_8GB, clock=...)``.
    """
    stores: list[ConversationStore] = []

    def make(
        client: ScriptedOllama,
        *,
        hardware: HardwareSnapshot = GPU_24GB,
        settings: Settings | None = None,
        fit_env: dict[str, str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> GemmaApp:
        stores.append(ConversationStore(tmp_path / "data"))
        return _app(
            client,
            stores[-1],
            config_file,
            hardware=hardware,
            settings=settings,
            fit_env=fit_env,
            clock=clock,
        )

    yield make
    for store in stores:
        store.close()


async def settle(app: GemmaApp, pilot: object, *, group: str | None = None) -> None:
    """Let the app finish what it started: the workers (of ``group``, or all), then a redraw.

    Args:
        app: The running app.
        pilot: Its :class:`textual.pilot.Pilot`.
        group: Only wait for this worker group (use it when another worker runs for ever).
    """
    workers = [w for w in app.workers if group is None or w.group == group]
    await app.workers.wait_for_complete(workers)
    await pilot.pause()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
