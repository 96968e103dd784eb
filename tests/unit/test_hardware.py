"""Hardware probes, tested at the driver boundary: a fake ``pynvml``, a fake sysfs tree and
injected platform facts. Nothing here depends on the machine's real hardware, except
the smoke test of :func:`probe_hardware` and the ``gpu``-marked test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import psutil
import pynvml
import pytest

from gemmatui.core import hardware
from gemmatui.core.hardware import (
    CPU_ONLY_NOTE,
    AmdSysfsProbe,
    AppleSiliconProbe,
    CpuProbe,
    HardwareProbe,
    NvmlProbe,
    StaticProbe,
    detect_probe,
    metal_working_set_bytes,
    probe_hardware,
    simulated_snapshot,
)
from gemmatui.core.types import GpuInfo, GpuSample, HardwareSample, HardwareSnapshot
from gemmatui.core.units import GiB, MiB
from tests.fakes.fake_pynvml import RTX_3090, RTX_4060_TI_16G, FakeNvml

AMD_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "amdgpu"
LIBRARY_NOT_FOUND_NOTE = "NVML library not found: no NVIDIA driver installed"


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch):
    """Install a :class:`FakeNvml` with the given GPU specs (a factory)."""

    def install(*gpus: dict, **options) -> FakeNvml:
        return FakeNvml(gpus, **options).install(monkeypatch)

    return install


@pytest.fixture
def fixed_ram(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[int, int]:
    """Make the machine report 64 GiB of RAM with 40 GiB available (both through
    /proc/meminfo, read on Linux, and psutil, read elsewhere)."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: {64 * GiB // 1024} kB\nMemFree: 1 kB\nMemAvailable: {40 * GiB // 1024} kB\n")
    monkeypatch.setattr(hardware, "_MEMINFO", meminfo)
    memory = SimpleNamespace(total=64 * GiB, available=40 * GiB)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: memory)
    return 64 * GiB, 40 * GiB


@pytest.fixture
def linux(tmp_path: Path) -> dict:
    """Probe as if on a Linux PC without AMD cards (an empty DRM tree)."""
    return {"drm_root": tmp_path / "drm", "system": lambda: "Linux", "machine": lambda: "x86_64"}


def _nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


# --------------------------------------------------------------------------- NVIDIA


def test_one_gpu_reports_every_field(fake_nvml) -> None:
    fake_nvml(RTX_3090)
    probe = NvmlProbe()
    snap = probe.snapshot()

    assert probe.available() and probe.note is None
    assert (snap.backend, snap.source, snap.notes, snap.simulated) == (
        "cuda",
        "NVML 12.550",
        (),
        False,
    )
    (gpu,) = snap.gpus
    assert gpu == GpuInfo(
        index=0,
        vendor="nvidia",
        name="NVIDIA GeForce RTX 3090",
        total_bytes=24 * GiB,
        free_bytes=24 * GiB - 1 * GiB - 300 * MiB,
        used_bytes=1 * GiB,  # the v2 memory API keeps driver-reserved memory out of "used"
        driver_version="550.54.14",
        cuda_version="12.4",
        compute_capability=(8, 6),
        bus_width_bits=384,
        max_mem_clock_mhz=9751,
        utilization_pct=37,
        memory_utilization_pct=12,
        temperature_c=54,
        power_w=123.456,
        power_limit_w=350.0,
        uuid="GPU-3090-0000",
    )
    assert round(gpu.bandwidth_bytes_per_s / 1e9) == 936
    assert snap.ram_total_bytes > 0 and snap.cpu_count


def test_two_gpus_keep_their_own_values(fake_nvml) -> None:
    fake_nvml(RTX_3090, RTX_4060_TI_16G)
    snap = NvmlProbe().snapshot()

    assert [gpu.index for gpu in snap.gpus] == [0, 1]
    assert [gpu.name for gpu in snap.gpus] == [
        "NVIDIA GeForce RTX 3090",
        "NVIDIA GeForce RTX 4060 Ti",
    ]
    assert [gpu.total_bytes for gpu in snap.gpus] == [24 * GiB, 16 * GiB]
    assert [gpu.compute_capability for gpu in snap.gpus] == [(8, 6), (8, 9)]
    assert {gpu.driver_version for gpu in snap.gpus} == {"550.54.14"}


def test_bytes_from_old_pynvml_are_decoded(fake_nvml) -> None:
    fake_nvml(RTX_3090, as_bytes=True)
    (gpu,) = NvmlProbe().snapshot().gpus
    assert (gpu.name, gpu.driver_version, gpu.uuid) == (
        "NVIDIA GeForce RTX 3090",
        "550.54.14",
        "GPU-3090-0000",
    )


@pytest.mark.parametrize(
    ("cuda", "expected"), [(12040, "12.4"), (11080, "11.8"), (13000, "13.0"), (12090, "12.9")]
)
def test_cuda_version_is_formatted(fake_nvml, cuda: int, expected: str) -> None:
    fake_nvml(RTX_3090, cuda_version=cuda)
    assert NvmlProbe().snapshot().gpus[0].cuda_version == expected


def test_old_driver_without_v2_calls_falls_back(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090)
    fake.fail("nvmlDeviceGetMemoryInfo_v2", pynvml.NVMLError_FunctionNotFound)
    fake.fail("nvmlSystemGetCudaDriverVersion_v2", pynvml.NVMLError_FunctionNotFound)
    snap = NvmlProbe().snapshot()

    (gpu,) = snap.gpus
    assert gpu.used_bytes == 1 * GiB + 300 * MiB  # v1 counts reserved memory as used
    assert gpu.free_bytes == 24 * GiB - 1 * GiB - 300 * MiB
    assert gpu.cuda_version == "12.4"
    assert snap.notes == ()
    assert fake.calls["nvmlSystemGetCudaDriverVersion"] == 1


def test_pynvml_without_memory_v2_uses_the_plain_call(fake_nvml, monkeypatch) -> None:
    fake_nvml(RTX_3090)
    monkeypatch.delattr(pynvml, "nvmlMemory_v2")
    assert NvmlProbe().snapshot().gpus[0].used_bytes == 1 * GiB + 300 * MiB


@pytest.mark.parametrize(
    ("function", "field"),
    [
        ("nvmlDeviceGetMemoryBusWidth", "bus_width_bits"),
        ("nvmlDeviceGetMaxClockInfo", "max_mem_clock_mhz"),
        ("nvmlDeviceGetTemperature", "temperature_c"),
        ("nvmlDeviceGetPowerUsage", "power_w"),
        ("nvmlDeviceGetEnforcedPowerLimit", "power_limit_w"),
        ("nvmlDeviceGetCudaComputeCapability", "compute_capability"),
        ("nvmlDeviceGetUUID", "uuid"),
        ("nvmlSystemGetDriverVersion", "driver_version"),
    ],
)
@pytest.mark.parametrize("error", [pynvml.NVMLError_NotSupported, pynvml.NVMLError_NoPermission])
def test_unsupported_query_gives_none_and_keeps_the_rest(fake_nvml, function, field, error) -> None:
    fake = fake_nvml(RTX_3090)
    fake.fail(function, error)
    snap = NvmlProbe().snapshot()

    (gpu,) = snap.gpus
    assert getattr(gpu, field) is None
    assert gpu.total_bytes == 24 * GiB and gpu.name == "NVIDIA GeForce RTX 3090"
    others = {
        "bus_width_bits": 384,
        "temperature_c": 54,
        "power_w": 123.456,
        "uuid": "GPU-3090-0000",
    }
    assert all(getattr(gpu, name) == value for name, value in others.items() if name != field)
    assert snap.notes == ()  # "not supported" is normal, not worth a note


def test_not_supported_on_one_gpu_only(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090, RTX_4060_TI_16G)
    fake.fail("nvmlDeviceGetMemoryBusWidth", pynvml.NVMLError_NotSupported, gpu=1)
    first, second = NvmlProbe().snapshot().gpus
    assert first.bandwidth_bytes_per_s is not None
    assert second.bus_width_bits is None and second.bandwidth_bytes_per_s is None


def test_spec_without_a_value_reads_as_not_supported(fake_nvml) -> None:
    fake_nvml({"name": "Tesla T4", "total": 16 * GiB, "temp": None, "util": None})
    (gpu,) = NvmlProbe().snapshot().gpus
    assert (gpu.temperature_c, gpu.utilization_pct, gpu.total_bytes) == (None, None, 16 * GiB)


def test_unexpected_nvml_error_becomes_a_note(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090)
    fake.fail("nvmlDeviceGetPowerUsage", pynvml.NVMLError_Unknown)
    snap = NvmlProbe().snapshot()
    assert snap.gpus[0].power_w is None
    assert snap.notes == ("NVML: Unknown Error (GPU 0)",)


@pytest.mark.parametrize(
    ("error", "note"),
    [
        (pynvml.NVMLError_LibraryNotFound, LIBRARY_NOT_FOUND_NOTE),
        (pynvml.NVMLError_DriverNotLoaded, "NVIDIA driver not loaded: check it with nvidia-smi"),
        (
            pynvml.NVMLError(pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH),
            "NVML: driver/library version mismatch — reboot or reinstall the driver",
        ),
        (pynvml.NVMLError_NoPermission, "NVML: no permission to open the NVIDIA driver"),
        (pynvml.NVMLError_Unknown, "NVML could not start: Unknown Error"),
    ],
)
def test_nvml_that_cannot_start_falls_back_to_cpu(fake_nvml, error, note) -> None:
    fake = fake_nvml(RTX_3090)
    fake.fail("nvmlInit", error)
    probe = NvmlProbe()
    snap = probe.snapshot()

    assert not probe.available()
    assert probe.note == note
    assert (snap.gpus, snap.backend, snap.source) == ((), "cpu", "psutil")
    assert snap.notes == (note, CPU_ONLY_NOTE)
    assert probe.sample().gpus == () and probe.sample().error is None
    assert fake.calls["nvmlInit"] == 1
    probe.close()
    assert fake.calls["nvmlShutdown"] == 0  # nothing was started, nothing to shut down


def test_missing_pynvml_package_falls_back(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "_nvml_library_missing", lambda: False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes "import pynvml" raise ImportError
    snap = NvmlProbe().snapshot()
    assert snap.backend == "cpu"
    assert snap.notes[0] == "NVIDIA support unavailable: the nvidia-ml-py package is not installed"


def test_nvml_without_gpus_is_shut_down_again(fake_nvml) -> None:
    fake = fake_nvml()
    probe = NvmlProbe()
    assert not probe.available()
    assert probe.note == "NVML started but found no NVIDIA GPU"
    assert fake.initialised == 0


def test_gpu_whose_handle_fails_is_left_out(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090, RTX_4060_TI_16G)
    fake.fail("nvmlDeviceGetHandleByIndex", pynvml.NVMLError_NoPermission, gpu=0)
    (gpu,) = NvmlProbe().snapshot().gpus
    assert (gpu.index, gpu.name) == (1, "NVIDIA GeForce RTX 4060 Ti")


def test_init_runs_once_for_many_calls_and_close_shuts_down(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090)
    probe = NvmlProbe()
    for _ in range(5):
        probe.snapshot()
        probe.sample()
    assert fake.calls["nvmlInit"] == 1 and fake.calls["nvmlDeviceGetCount"] == 1

    probe.close()
    probe.close()
    assert fake.calls["nvmlShutdown"] == 1 and fake.initialised == 0

    probe.sample()  # a later call opens NVML again
    assert fake.calls["nvmlInit"] == 2
    probe.close()


@pytest.mark.parametrize("init_fails", [False, True])
def test_init_runs_once_across_threads(fake_nvml, init_fails: bool) -> None:
    fake = fake_nvml(RTX_3090, RTX_4060_TI_16G)
    fake.delay("nvmlInit", 0.05)  # all threads arrive while the first one is initialising
    if init_fails:
        fake.fail("nvmlInit", pynvml.NVMLError_DriverNotLoaded)
    probe = NvmlProbe()
    results: list[object] = []
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()
        results.append(probe.sample() if index % 2 else probe.snapshot())

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fake.calls["nvmlInit"] == 1
    assert len(results) == 8
    expected_gpus = 0 if init_fails else 2
    assert all(len(result.gpus) == expected_gpus for result in results)


def test_sample_reads_live_values(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090, RTX_4060_TI_16G)
    probe = NvmlProbe()
    sample = probe.sample()

    assert sample.error is None
    assert sample.gpus[0] == GpuSample(
        index=0,
        name="NVIDIA GeForce RTX 3090",
        used_bytes=1 * GiB,
        total_bytes=24 * GiB,
        utilization_pct=37,
        temperature_c=54,
        power_w=123.456,
        power_limit_w=350.0,
    )
    assert sample.ram_total_bytes > 0 and 0 <= sample.ram_used_bytes <= sample.ram_total_bytes

    fake.gpus[0]["used"] = 20 * GiB
    assert probe.sample().gpus[0].used_bytes == 20 * GiB
    assert fake.calls["nvmlDeviceGetMemoryBusWidth"] == 0  # samples skip the fixed fields


def test_sample_survives_a_gpu_lost_mid_run(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090, RTX_4060_TI_16G)
    probe = NvmlProbe()
    assert probe.sample().error is None

    fake.lose_gpu(0)
    sample = probe.sample()

    lost, alive = sample.gpus
    assert sample.error == "NVML: GPU is lost (GPU 0)"
    assert (lost.name, lost.used_bytes, lost.total_bytes, lost.temperature_c) == (
        "NVIDIA GeForce RTX 3090",
        None,
        None,
        None,
    )
    assert alive.total_bytes == 16 * GiB and alive.temperature_c == 38
    snap = probe.snapshot()
    assert "NVML: GPU is lost (GPU 0)" in snap.notes and snap.gpus[1].total_bytes == 16 * GiB


def test_sample_never_raises_even_on_unexpected_errors(fake_nvml, monkeypatch) -> None:
    fake_nvml(RTX_3090)

    def broken() -> None:
        raise RuntimeError("psutil exploded")

    monkeypatch.setattr(hardware, "_MEMINFO", Path("/nonexistent/meminfo"))
    monkeypatch.setattr(psutil, "virtual_memory", broken)
    for probe in (NvmlProbe(), CpuProbe(), AmdSysfsProbe(AMD_FIXTURE)):
        sample = probe.sample()
        assert sample.error == "could not read the hardware: psutil exploded"
        assert sample.gpus == ()


# --------------------------------------------------------------------------- AMD


def test_amd_sysfs_reads_the_fixture_tree(fixed_ram) -> None:
    probe = AmdSysfsProbe(AMD_FIXTURE, notes=[LIBRARY_NOT_FOUND_NOTE])
    snap = probe.snapshot()

    assert probe.available()
    assert (snap.backend, snap.source, snap.notes) == (
        "rocm",
        "amdgpu sysfs",
        (LIBRARY_NOT_FOUND_NOTE,),
    )
    assert (snap.ram_total_bytes, snap.ram_available_bytes) == fixed_ram
    radeon, instinct = snap.gpus
    assert radeon == GpuInfo(
        index=0,
        vendor="amd",
        name="AMD GPU (1002:744c)",
        total_bytes=25753026560,
        free_bytes=25753026560 - 2 * GiB,
        used_bytes=2 * GiB,
        utilization_pct=12,
        memory_utilization_pct=4,
        temperature_c=48,
        power_w=61.0,
        power_limit_w=327.0,
    )
    assert (instinct.index, instinct.name, instinct.total_bytes) == (
        1,
        "AMD Instinct MI210",
        65520 * MiB,
    )
    assert (instinct.power_w, instinct.temperature_c) == (42.0, 35)
    assert (instinct.utilization_pct, instinct.power_limit_w) == (None, None)


def test_amd_sample_follows_the_files(tmp_path: Path, fixed_ram) -> None:
    root = shutil.copytree(AMD_FIXTURE, tmp_path / "drm")
    probe = AmdSysfsProbe(root)
    (root / "card0/device/mem_info_vram_used").write_text("4294967296\n")
    shutil.rmtree(root / "card0/device/hwmon")

    sample = probe.sample()
    assert sample.error is None
    assert sample.gpus[0].used_bytes == 4 * GiB
    assert (sample.gpus[0].temperature_c, sample.gpus[0].power_w) == (None, None)
    assert sample.ram_used_bytes == 24 * GiB


def test_amd_cards_sort_by_number_and_bad_values_read_as_none(tmp_path: Path) -> None:
    for number in (10, 2):
        device = tmp_path / f"card{number}" / "device"
        device.mkdir(parents=True)
        (device / "mem_info_vram_total").write_text(f"{number * GiB}\n")
        (device / "mem_info_vram_used").write_text("garbage\n")
    gpus = AmdSysfsProbe(tmp_path).snapshot().gpus
    assert [(gpu.index, gpu.total_bytes) for gpu in gpus] == [(0, 2 * GiB), (1, 10 * GiB)]
    assert [gpu.name for gpu in gpus] == ["AMD GPU", "AMD GPU"]
    assert gpus[0].used_bytes is None and gpus[0].free_bytes is None


def test_no_amd_cards_means_not_available(tmp_path: Path) -> None:
    assert not AmdSysfsProbe(tmp_path / "missing").available()


# --------------------------------------------------------------------------- Apple Silicon


def _mac(ram_total: int, ram_available: int, machine: str = "arm64") -> AppleSiliconProbe:
    return AppleSiliconProbe(
        system=lambda: "Darwin",
        machine=lambda: machine,
        memory=lambda: (ram_total, ram_available),
        chip_name=lambda: "Apple M2 Max",
    )


@pytest.mark.parametrize(
    ("ram", "usable"),
    [
        (8 * GiB, 8 * GiB * 2 // 3),
        (36 * GiB, 24 * GiB),
        (48 * GiB, 36 * GiB),
        (128 * GiB, 96 * GiB),
    ],
)
def test_metal_working_set_is_two_thirds_up_to_36_gib_then_three_quarters(ram, usable) -> None:
    assert metal_working_set_bytes(ram) == usable


def test_apple_silicon_snapshot_uses_unified_memory() -> None:
    probe = _mac(32 * GiB, 20 * GiB)
    snap = probe.snapshot()

    assert probe.available()
    assert (snap.backend, snap.source, snap.cpu_name) == (
        "metal",
        "Apple unified memory",
        "Apple M2 Max",
    )
    assert snap.notes == (
        "unified memory: the GPU may use about 2/3 of RAM (Metal's working-set limit), "
        "shared with the CPU",
    )
    (gpu,) = snap.gpus
    assert (gpu.vendor, gpu.name, gpu.unified_memory) == ("apple", "Apple M2 Max GPU", True)
    usable = 32 * GiB * 2 // 3  # 21.3 GiB; only 20 GiB of RAM is available right now
    assert (gpu.total_bytes, gpu.free_bytes, gpu.used_bytes) == (
        usable,
        20 * GiB,
        usable - 20 * GiB,
    )
    roomy = _mac(32 * GiB, 30 * GiB).snapshot().gpus[0]
    assert roomy.free_bytes == usable  # free never exceeds Metal's limit


def test_apple_free_memory_shrinks_with_what_others_use() -> None:
    sample = _mac(64 * GiB, 10 * GiB).sample()
    (gpu,) = sample.gpus
    assert (gpu.total_bytes, gpu.used_bytes) == (48 * GiB, 38 * GiB)
    assert (sample.ram_total_bytes, sample.ram_used_bytes, sample.error) == (
        64 * GiB,
        54 * GiB,
        None,
    )


def test_apple_without_a_chip_name() -> None:
    probe = AppleSiliconProbe(memory=lambda: (16 * GiB, 8 * GiB), chip_name=lambda: None)
    snap = probe.snapshot()
    assert snap.gpus[0].name == "Apple Silicon GPU"


@pytest.mark.parametrize(("system", "machine"), [("Darwin", "x86_64"), ("Linux", "arm64")])
def test_not_apple_silicon(system: str, machine: str) -> None:
    assert not AppleSiliconProbe(system=lambda: system, machine=lambda: machine).available()


# --------------------------------------------------------------------------- CPU and detection


def test_cpu_only_snapshot(fixed_ram) -> None:
    snap = CpuProbe().snapshot()
    assert (snap.gpus, snap.backend, snap.source) == ((), "cpu", "psutil")
    assert snap.notes == (CPU_ONLY_NOTE,)
    assert (snap.ram_total_bytes, snap.ram_available_bytes) == fixed_ram
    assert snap.cpu_count and snap.cpu_count >= 1
    sample = CpuProbe().sample()
    assert (sample.gpus, sample.ram_used_bytes, sample.ram_total_bytes) == ((), 24 * GiB, 64 * GiB)


def test_detect_prefers_nvidia(fake_nvml) -> None:
    fake_nvml(RTX_3090)
    probe = detect_probe(drm_root=AMD_FIXTURE, system=lambda: "Darwin", machine=lambda: "arm64")
    assert isinstance(probe, NvmlProbe)
    probe.close()


def test_detect_falls_back_to_amd_with_the_nvml_note(fake_nvml) -> None:
    fake = fake_nvml(RTX_3090)
    fake.fail("nvmlInit", pynvml.NVMLError_LibraryNotFound)
    probe = detect_probe(drm_root=AMD_FIXTURE, system=lambda: "Linux", machine=lambda: "x86_64")
    assert isinstance(probe, AmdSysfsProbe)
    assert probe.snapshot().notes == (LIBRARY_NOT_FOUND_NOTE,)


def test_detect_falls_back_to_apple(fake_nvml, tmp_path: Path) -> None:
    fake = fake_nvml()
    fake.fail("nvmlInit", pynvml.NVMLError_LibraryNotFound)
    probe = detect_probe(drm_root=tmp_path, system=lambda: "Darwin", machine=lambda: "arm64")
    assert isinstance(probe, AppleSiliconProbe)


def test_detect_falls_back_to_cpu_and_says_why(fake_nvml, linux) -> None:
    fake = fake_nvml(RTX_3090)
    fake.fail("nvmlInit", pynvml.NVMLError_LibraryNotFound)
    probe = detect_probe(**linux)
    snap = probe.snapshot()

    assert isinstance(probe, CpuProbe)
    assert (snap.backend, snap.gpus) == ("cpu", ())
    assert snap.notes == (LIBRARY_NOT_FOUND_NOTE, CPU_ONLY_NOTE)


def test_detect_shuts_nvml_down_when_it_finds_no_gpu(fake_nvml, linux) -> None:
    fake = fake_nvml()
    assert isinstance(detect_probe(**linux), CpuProbe)
    assert fake.initialised == 0


@pytest.mark.parametrize(
    "make", [NvmlProbe, AmdSysfsProbe, CpuProbe, AppleSiliconProbe, lambda: StaticProbe(SNAPSHOT)]
)
def test_every_probe_follows_the_protocol(make) -> None:
    assert isinstance(make(), HardwareProbe)


def test_probe_hardware_on_this_machine_does_not_raise() -> None:
    snap = probe_hardware()
    assert isinstance(snap, HardwareSnapshot)
    assert snap.ram_total_bytes > 0
    assert snap.backend in ("cuda", "rocm", "metal", "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not _nvml_works(), reason="needs an NVIDIA GPU with a working NVML")
def test_real_nvidia_gpu() -> None:
    probe = NvmlProbe()
    try:
        snap = probe.snapshot()
        sample = probe.sample()
    finally:
        probe.close()
    assert snap.backend == "cuda" and snap.gpus
    assert all(gpu.total_bytes and gpu.total_bytes > 0 for gpu in snap.gpus)
    assert all(gpu.driver_version and gpu.compute_capability for gpu in snap.gpus)
    assert len(sample.gpus) == len(snap.gpus) and sample.error is None


# --------------------------------------------------------------------------- static and simulated


def _sample(used: int) -> HardwareSample:
    gpu = GpuSample(index=0, name="test GPU", used_bytes=used, total_bytes=8 * GiB)
    return HardwareSample(timestamp=float(used), gpus=(gpu,), ram_used_bytes=0, ram_total_bytes=1)


SNAPSHOT = HardwareSnapshot(
    gpus=(
        GpuInfo(index=0, vendor="nvidia", name="test GPU", total_bytes=8 * GiB, free_bytes=6 * GiB),
    ),
    ram_total_bytes=32 * GiB,
    ram_available_bytes=20 * GiB,
    backend="cuda",
    source="test",
    notes=("a base note",),
    cpu_name="Test CPU",
    cpu_count=8,
)


def test_static_probe_repeats_the_last_sample() -> None:
    probe = StaticProbe(SNAPSHOT, [_sample(1), _sample(2)])
    assert probe.snapshot() is SNAPSHOT
    assert [probe.sample().gpus[0].used_bytes for _ in range(4)] == [1, 2, 2, 2]
    probe.close()
    assert probe.closed


def test_static_probe_can_cycle() -> None:
    probe = StaticProbe(SNAPSHOT, [_sample(1), _sample(2)], cycle=True)
    assert [probe.sample().gpus[0].used_bytes for _ in range(5)] == [1, 2, 1, 2, 1]


def test_static_probe_without_samples_derives_them_from_the_snapshot() -> None:
    sample = StaticProbe(SNAPSHOT).sample()
    assert sample.gpus == (
        GpuSample(index=0, name="test GPU", used_bytes=2 * GiB, total_bytes=8 * GiB),
    )
    assert (sample.ram_used_bytes, sample.ram_total_bytes) == (12 * GiB, 32 * GiB)


def test_simulated_gpu_and_ram() -> None:
    snap = simulated_snapshot(24 * GiB, 32 * GiB, base=SNAPSHOT)

    assert (snap.simulated, snap.source, snap.backend) == (True, "simulated", "cuda")
    (gpu,) = snap.gpus
    assert gpu == GpuInfo(
        index=0,
        vendor="nvidia",
        name="simulated 24.0 GiB GPU",
        total_bytes=24 * GiB,
        free_bytes=24 * GiB,
        used_bytes=0,
        compute_capability=(8, 9),
    )
    assert gpu.bandwidth_bytes_per_s is None
    assert (snap.ram_total_bytes, snap.ram_available_bytes) == (32 * GiB, 32 * GiB)
    assert (snap.cpu_name, snap.cpu_count) == ("Test CPU", 8)
    assert snap.notes == (
        "simulated: one GPU with 24.0 GiB of VRAM, all free",
        "simulated: 32.0 GiB of RAM, all available",
    )


def test_simulated_vram_only_keeps_the_base_ram() -> None:
    snap = simulated_snapshot(12 * GiB, None, base=SNAPSHOT)
    assert (snap.ram_total_bytes, snap.ram_available_bytes) == (32 * GiB, 20 * GiB)
    assert snap.gpus[0].name == "simulated 12.0 GiB GPU"


def test_simulated_vram_without_base_reads_this_machines_ram(fixed_ram) -> None:
    snap = simulated_snapshot(8 * GiB, None)
    assert (snap.ram_total_bytes, snap.ram_available_bytes) == fixed_ram
    assert snap.cpu_name is None


def test_simulated_ram_only_keeps_the_base_gpus() -> None:
    snap = simulated_snapshot(None, 128 * GiB, base=SNAPSHOT)
    assert (snap.gpus, snap.backend) == (SNAPSHOT.gpus, "cuda")
    assert snap.ram_total_bytes == 128 * GiB
    assert snap.notes == ("simulated: 128.0 GiB of RAM, all available", "a base note")


def test_simulated_zero_vram_means_cpu_only() -> None:
    snap = simulated_snapshot(0, 16 * GiB, base=SNAPSHOT)
    assert (snap.gpus, snap.backend) == ((), "cpu")
    assert snap.notes[0] == "simulated: no GPU, CPU only"


@pytest.mark.parametrize(("vram", "ram"), [(None, None), (-1, None), (None, -5)])
def test_simulated_snapshot_rejects_nonsense(vram, ram) -> None:
    with pytest.raises(ValueError):
        simulated_snapshot(vram, ram, base=SNAPSHOT)


# --------------------------------------------------------------------------- import hygiene


def test_module_imports_only_the_standard_library_at_load_time() -> None:
    code = (
        "import sys, gemmatui.core.hardware; "
        "print(sorted(m for m in ('pynvml', 'psutil', 'textual', 'rich', 'httpx', 'ollama') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_the_nvml_library_pynvml_is_not_even_imported() -> None:
    """On Linux without libnvidia-ml, the probe says so without paying for pynvml."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gemmatui.core import hardware\n"
        "hardware._nvml_library_missing = lambda: True\n"
        "snap = hardware.NvmlProbe().snapshot()\n"
        "print('pynvml' in sys.modules, snap.backend, '|'.join(snap.notes))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, backend, notes = out.stdout.strip().split(" ", 2)
    assert loaded == "False" and backend == "cpu"
    assert "NVML library not found" in notes


def test_system_memory_matches_psutil() -> None:
    """The /proc/meminfo reading agrees with psutil's (within what changes between reads)."""
    import psutil

    from gemmatui.core.hardware import _system_memory

    total, available = _system_memory()
    vm = psutil.virtual_memory()
    assert total == vm.total
    assert abs(available - vm.available) < 256 * 2**20
