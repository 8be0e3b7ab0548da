"""bench.probe: DeviceInfo and host facts from torch (real) and NVML (a fake pynvml; no GPU here)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import bench
import fake_pynvml as fake
from bench import probe
from results.files.schema import DeviceInfo, RunInfo, RunResult, from_dict, to_dict

REPO = Path(bench.__file__).resolve().parent.parent
NVML_ONLY = (
    "pci_device_id", "sm_clock_max_mhz", "sm_clock_app_mhz", "mem_clock_max_mhz",
    "mem_clock_app_mhz", "memory_bus_width_bits", "ecc_mode", "mig_mode", "power_limit_w",
    "pcie_gen_current", "pcie_gen_max", "pcie_width_current", "pcie_width_max", "nvlink",
)


@pytest.fixture(autouse=True)
def fresh_nvml_session():
    probe.nvml_shutdown()
    yield
    probe.nvml_shutdown()


def install(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None) -> None:
    """Make `import pynvml` return `module` (None: the import fails, as with no nvidia-ml-py)."""
    monkeypatch.setitem(sys.modules, "pynvml", module)
    # The fakes are found by index (no torch CUDA here): that mapping holds only in PCI order.
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")


def h100_torch_props(uuid: str) -> types.SimpleNamespace:
    """What torch.cuda.get_device_properties reports on an H100 SXM5 (the probe's torch_props
    input; torch's own uuid prints without the 'GPU-' prefix)."""
    return types.SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", major=9, minor=0, multi_processor_count=132,
        total_memory=85_029_158_912, L2_cache_size=52_428_800, uuid=uuid.removeprefix("GPU-"),
    )


def round_trip(device: DeviceInfo) -> DeviceInfo:
    run = RunInfo(host="h", started_utc="2025-01-01T00:00:00Z", finished_utc=None, mode="smoke",
                  argv=(), harness_version=bench.__version__)
    return from_dict(to_dict(RunResult(run=run, devices=(device,), measurements=()))).devices[0]


# --------------------------------------------------------------------------- the fake itself


def test_fake_uses_real_pynvml_names_and_values():
    real = pytest.importorskip("pynvml")
    for name in fake.DEVICE_FUNCTIONS + fake.MODULE_FUNCTIONS:
        assert callable(getattr(real, name, None)), f"pynvml has no {name}"
    for name, value in fake.CONSTANTS.items():
        assert getattr(real, name) == value, name
    for name, cls in fake.ERROR_CLASSES.items():
        real_error = getattr(real, name)()
        assert real_error.value == cls().value, name
        assert str(real_error) == str(cls()), name
        assert isinstance(real_error, real.NVMLError)


# --------------------------------------------------------------------------- a full H100


def test_h100_every_field_filled_and_handle_found_by_uuid(monkeypatch):
    other = fake.h100_answers(nvmlDeviceGetUUID="GPU-00000000-0000-0000-0000-000000000000",
                              nvmlDeviceGetName="NVIDIA A100-SXM4-80GB")
    h100 = fake.h100_answers()
    nvml = fake.make_pynvml([other, h100])  # NVML index 1 is torch's cuda:0 (e.g. device order)
    install(monkeypatch, nvml)

    info = probe.probe_cuda_device(0, h100_torch_props(h100["nvmlDeviceGetUUID"]))

    assert info.unavailable == {}
    assert info.index == 0 and info.backend == "cuda"
    assert info.name == "NVIDIA H100 80GB HBM3"
    assert info.pci_device_id == "0x2330"
    assert info.pci_bus_id == "00000000:18:00.0"
    assert info.uuid == h100["nvmlDeviceGetUUID"]
    assert info.compute_capability == "9.0"
    assert info.sm_count == 132
    assert (info.sm_clock_max_mhz, info.sm_clock_app_mhz) == (1980, 1755)
    assert (info.mem_clock_max_mhz, info.mem_clock_app_mhz) == (2619, 2619)
    assert info.memory_total_bytes == 85_029_158_912  # torch's view wins (MIG-slice aware)
    assert info.memory_bus_width_bits == 5120
    assert info.l2_cache_bytes == 52_428_800
    assert info.ecc_mode == "enabled" and info.mig_mode == "disabled"
    assert info.power_limit_w == 700.0
    assert (info.pcie_gen_current, info.pcie_gen_max) == (5, 5)
    assert (info.pcie_width_current, info.pcie_width_max) == (16, 16)
    assert info.nvlink is not None and len(info.nvlink) == 18
    assert info.nvlink[0] == {"link": 0, "state": "active", "version": 4, "version_name": "4.0",
                              "nvml_version": 6}
    assert info.threads is None
    assert nvml.calls["nvmlDeviceGetHandleByUUID"] == 1
    assert "nvmlDeviceGetHandleByIndex" not in nvml.calls
    assert nvml.calls["nvmlInit"] == 1
    assert round_trip(info) == info


def test_without_cuda_in_torch_nvml_fills_what_it_can(monkeypatch):
    install(monkeypatch, fake.make_pynvml([fake.h100_answers()]))
    assert not torch.cuda.is_available()  # this machine: the real torch sees no CUDA

    info = probe.probe_cuda_device(0)

    assert info.name == "NVIDIA H100 80GB HBM3"
    assert info.compute_capability == "9.0"
    assert info.memory_total_bytes == 85_520_809_984
    assert info.sm_count is None and info.l2_cache_bytes is None
    assert info.unavailable == {"sm_count": "torch: CUDA not available",
                                "l2_cache_bytes": "torch: CUDA not available"}


def test_cuda_visible_devices_maps_torch_index_to_nvml_index(monkeypatch):
    gpus = [fake.h100_answers(nvmlDeviceGetUUID=f"GPU-{i}") for i in range(4)]
    install(monkeypatch, fake.make_pynvml(gpus))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert probe.probe_cuda_device(0).uuid == "GPU-3"
    assert probe.probe_cuda_device(1).uuid == "GPU-1"


def test_nvml_initialised_once_and_shut_down(monkeypatch):
    nvml = fake.make_pynvml([fake.h100_answers()])
    install(monkeypatch, nvml)
    probe.probe_cuda_device(0)
    probe.probe_cuda_device(0)
    assert nvml.calls["nvmlInit"] == 1
    probe.nvml_shutdown()
    assert nvml.calls["nvmlShutdown"] == 1
    probe.probe_cuda_device(0)
    assert nvml.calls["nvmlInit"] == 2


# --------------------------------------------------------------------------- "Not Supported"


def test_not_supported_is_recorded_as_none_with_reason(monkeypatch):
    ns = fake.NOT_SUPPORTED
    answers = fake.h100_answers(
        nvmlDeviceGetNvLinkState={i: ns for i in range(36)},
        nvmlDeviceGetNvLinkVersion={i: ns for i in range(36)},
        nvmlDeviceGetEccMode=ns,
        nvmlDeviceGetEnforcedPowerLimit=ns,
        nvmlDeviceGetPowerManagementLimit=ns,
        nvmlDeviceGetApplicationsClock={fake.NVML_CLOCK_SM: ns, fake.NVML_CLOCK_MEM: 2619},
    )
    install(monkeypatch, fake.make_pynvml([answers]))

    info = probe.probe_cuda_device(0)

    for name in ("nvlink", "ecc_mode", "power_limit_w", "sm_clock_app_mhz"):
        assert getattr(info, name) is None, name
        assert info.unavailable[name] == "NVML: Not Supported", name
    assert info.mem_clock_app_mhz == 2619
    assert info.pcie_gen_max == 5 and info.mig_mode == "disabled"
    assert round_trip(info) == info


def test_power_limit_falls_back_to_management_limit(monkeypatch):
    answers = fake.h100_answers(nvmlDeviceGetEnforcedPowerLimit=fake.NOT_SUPPORTED,
                                nvmlDeviceGetPowerManagementLimit=350_000)
    install(monkeypatch, fake.make_pynvml([answers]))
    info = probe.probe_cuda_device(0)
    assert info.power_limit_w == 350.0 and "power_limit_w" not in info.unavailable


def test_nvlink_lists_only_links_that_answer(monkeypatch):
    state = {i: fake.NOT_SUPPORTED for i in range(36)}
    state.update({0: 1, 1: 0})
    answers = fake.h100_answers(nvmlDeviceGetNvLinkState=state,
                                nvmlDeviceGetNvLinkVersion={0: 6, 1: fake.NOT_SUPPORTED})
    install(monkeypatch, fake.make_pynvml([answers]))
    info = probe.probe_cuda_device(0)
    assert info.nvlink == (
        {"link": 0, "state": "active", "version": 4, "version_name": "4.0", "nvml_version": 6},
        {"link": 1, "state": "inactive", "version": None, "version_name": None, "nvml_version": None},
    )


def test_other_nvml_errors_and_old_pynvml_are_recorded_not_raised(monkeypatch):
    answers = fake.h100_answers(nvmlDeviceGetMigMode=fake.nvml_error(fake.NVML_ERROR_NO_PERMISSION))
    del answers["nvmlDeviceGetMemoryBusWidth"]
    nvml = fake.make_pynvml([answers])
    del nvml.nvmlDeviceGetMemoryBusWidth  # an nvidia-ml-py older than the function
    install(monkeypatch, nvml)

    info = probe.probe_cuda_device(0)

    assert info.unavailable["mig_mode"] == "NVML: Insufficient Permissions"
    assert info.unavailable["memory_bus_width_bits"].startswith("NVML: AttributeError")
    assert info.memory_bus_width_bits is None and info.mig_mode is None
    assert info.pcie_gen_current == 5


def test_no_nvml_handle_for_the_device(monkeypatch):
    install(monkeypatch, fake.make_pynvml([]))  # NVML works but sees no GPU
    info = probe.probe_cuda_device(0)
    assert info.name == "cuda:0"
    assert info.unavailable["ecc_mode"] == "NVML: no device handle for cuda:0: Invalid Argument"


# --------------------------------------------------------------------------- no NVML at all


def _assert_all_nvml_fields_missing(info: DeviceInfo, reason_part: str) -> None:
    assert info.name == "cuda:0"
    for name in probe.GPU_FIELDS:
        assert getattr(info, name) is None, name
    for name in NVML_ONLY:
        assert info.unavailable[name].startswith("NVML unavailable: "), name
        assert reason_part in info.unavailable[name], name
    # torch (real, no CUDA here) explains its own fields; where NVML could also answer, both say why
    assert info.unavailable["sm_count"] == "torch: CUDA not available"
    assert info.unavailable["l2_cache_bytes"] == "torch: CUDA not available"
    assert info.unavailable["memory_total_bytes"].startswith(
        "torch: CUDA not available; NVML unavailable: ")


def test_pynvml_not_installed(monkeypatch):
    install(monkeypatch, None)
    info = probe.probe_cuda_device(0)
    _assert_all_nvml_fields_missing(info, "pynvml not importable")
    assert round_trip(info) == info


def test_nvml_library_not_found(monkeypatch):
    nvml = fake.make_pynvml([fake.h100_answers()],
                            init_error=fake.ERROR_CLASSES["NVMLError_LibraryNotFound"]())
    install(monkeypatch, nvml)
    info = probe.probe_cuda_device(0)
    _assert_all_nvml_fields_missing(info, "nvmlInit failed: NVML Shared Library Not Found")
    probe.probe_cuda_device(0)
    assert nvml.calls["nvmlInit"] == 1  # the failure is remembered, not retried per call


def test_real_pynvml_on_this_machine_never_raises():
    fake.skip_if_real_nvml_works()
    info = probe.probe_cuda_device(0)
    _assert_all_nvml_fields_missing(info, "NVML unavailable")
    assert probe.probe_host()["driver"] is None


# --------------------------------------------------------------------------- CPU and host


def test_cpu_device_on_this_machine():
    info = probe.probe_cpu_device()
    assert info.backend == "cpu" and info.index == 0
    assert info.name and info.name == (probe.cpu_model() or info.name)
    assert info.threads == torch.get_num_threads() >= 1
    assert info.host
    for name in probe.GPU_FIELDS:
        assert getattr(info, name) is None
    assert info.unavailable == {name: "CPU backend" for name in probe.GPU_FIELDS}
    assert round_trip(info) == info


def test_gpu_fields_are_every_deviceinfo_field_but_identity():
    names = {f.name for f in dataclasses.fields(DeviceInfo)}
    assert set(probe.GPU_FIELDS) == names - {"index", "backend", "name", "host", "threads",
                                             "unavailable", "identity"}


# --------------------------------------------------------------------------- identity (lab procedure)


def test_identity_records_every_lab_field_from_nvml(monkeypatch):
    from bench.nvml.identity import IDENTITY_FIELDS

    h100 = fake.h100_answers()
    install(monkeypatch, fake.make_pynvml([h100]))
    info = probe.probe_cuda_device(0)
    ident = info.identity
    assert set(IDENTITY_FIELDS) <= set(ident) and ident["source"] == "NVML"
    assert ident["serial"] == "1650123456789" and ident["board_part_number"] == "692-2G520-0200-000"
    assert ident["vbios_version"] == "96.00.74.00.01" and ident["inforom_image_version"] == "G520.0200.00.05"
    assert ident["pci_device_id"] == "0x233010de" and ident["pci_subsystem_id"] == "0x16c110de"
    assert ident["driver_version"] == "550.54.15"
    assert ident["power_limit_default_w"] == 700.0 and ident["power_limit_enforced_w"] == 700.0
    assert (ident["sm_clock_max_mhz"], ident["sm_clock_app_mhz"]) == (1980, 1755)
    assert ident["memory_total_bytes"] == 85_520_809_984  # NVML's, beside torch's in memory_total_bytes
    assert ident["ecc_mode"] == "enabled" and ident["mig_mode"] == "disabled"
    assert round_trip(info) == info


def test_identity_says_not_supported_where_nvml_does(monkeypatch):
    ns = fake.NOT_SUPPORTED
    answers = fake.h100_answers(nvmlDeviceGetSerial=ns, nvmlDeviceGetInforomImageVersion=ns,
                                nvmlDeviceGetVbiosVersion=fake.nvml_error(fake.NVML_ERROR_NO_PERMISSION))
    install(monkeypatch, fake.make_pynvml([answers]))
    ident = probe.probe_cuda_device(0).identity
    assert ident["serial"] == "Not Supported" and ident["inforom_image_version"] == "Not Supported"
    assert ident["vbios_version"].startswith("unavailable: ")
    assert ident["board_part_number"] == "692-2G520-0200-000"


def test_identity_without_nvml_names_the_reason(monkeypatch):
    install(monkeypatch, None)
    ident = probe.probe_cuda_device(0).identity
    assert ident["source"] == "none" and ident["serial"].startswith("unavailable: ")


def test_cpu_identity_reads_dmi_where_there_is_one(tmp_path):
    from bench.identity import cpu_identity

    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "product_serial").write_text("VMware-56 4d 1a\n")
    (dmi / "board_name").write_text("440BX Desktop Reference Platform\n")
    (tmp_path / "machine-id").write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    ident = cpu_identity(dmi, tmp_path / "machine-id")
    assert ident["serial"] == "VMware-56 4d 1a" and ident["board_part_number"].startswith("440BX")
    assert ident["bios_version"] == f"unavailable: no {dmi / 'bios_version'}"
    assert ident["machine_id"] == "3d1219c7c4c5404aaa1f6d2a48adfda4" and ident["source"] == "DMI"
    none = cpu_identity(tmp_path / "absent", tmp_path / "absent-id")
    assert none["source"] == "none (no DMI tables)" and none["serial"].startswith("unavailable: no ")


def test_cpu_device_records_this_hosts_identity():
    info = probe.probe_cpu_device()
    assert "serial" in info.identity and "machine_id" in info.identity


def test_host_on_this_machine(monkeypatch):
    monkeypatch.setenv("NCCL_DEBUG", "INFO")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("TPPBENCH_UNRELATED", "x")
    install(monkeypatch, None)

    host = probe.probe_host()

    run_fields = {f.name for f in dataclasses.fields(RunInfo)}
    assert set(host) <= run_fields
    RunInfo(**host, started_utc="2025-01-01T00:00:00Z", finished_utc=None, mode="smoke", argv=())
    assert host["host"] and host["os"] and host["cpu_model"]
    assert host["python"] == ".".join(map(str, sys.version_info[:3]))
    assert host["torch"] == torch.__version__
    assert host["cuda"] == torch.version.cuda
    assert host["driver"] is None and host["nccl"] is None  # CPU build, no NVML
    assert host["harness_version"] == bench.__version__
    assert host["env"]["NCCL_DEBUG"] == "INFO" and host["env"]["OMP_NUM_THREADS"] == "2"
    assert "TPPBENCH_UNRELATED" not in host["env"] and "HOME" not in host["env"]
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = None
    assert host["git_commit"] == head


def test_host_driver_version_from_nvml(monkeypatch):
    install(monkeypatch, fake.make_pynvml([fake.h100_answers()], driver="550.54.15"))
    assert probe.probe_host()["driver"] == "550.54.15"


def test_git_commit_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    assert probe.git_commit(tmp_path) is None
    assert probe.git_commit(REPO / "bench") is None  # inside a checkout but not its top
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable at all
    assert probe.git_commit(REPO) is None


def test_no_uuid_or_bus_id_and_cuda_order_is_not_guessed_as_nvml_order(monkeypatch):
    """Issue 18, defect 11: with no UUID or PCI bus id from torch, the CUDA index (fastest first)
    was used as an NVML index (PCI order): another GPU's fields could be read. Now: say so."""
    install(monkeypatch, fake.make_pynvml([fake.h100_answers(nvmlDeviceGetUUID=f"GPU-{i}") for i in range(2)]))
    monkeypatch.delenv("CUDA_DEVICE_ORDER")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    info = probe.probe_cuda_device(0)
    assert info.uuid is None
    assert "not guessing by index" in info.unavailable["uuid"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1,GPU-0")  # UUIDs name GPUs whatever the order
    probe.nvml_shutdown()
    assert probe.probe_cuda_device(0).uuid == "GPU-1"


def test_a_mig_instance_is_recorded_as_the_instance_not_its_parent(monkeypatch):
    """Issue 18, defect 10: CUDA's UUID under MIG is the instance's; the lookup prefixed it with
    GPU-, missed, fell back to the PCI bus id and recorded the parent's name and UUID with the
    slice's SMs and memory. Now: MIG-<uuid> first, and the record names the instance."""
    ref: list = []
    parent = fake.h100_answers(nvmlDeviceGetMigMode=[1, 1])
    instance = fake.mig_instance_answers(0, "MIG-1234abcd-0000-5000-8000-00000000beef",
                                         "NVIDIA H100 80GB HBM3 MIG 1g.10gb", ref)
    nvml = fake.make_pynvml([parent, instance])
    ref.append(nvml)
    install(monkeypatch, nvml)
    props = h100_torch_props("1234abcd-0000-5000-8000-00000000beef")  # torch: the instance's bare UUID
    props.multi_processor_count, props.total_memory = 16, 10 << 30  # the slice's
    info = probe.probe_cuda_device(0, props)
    assert info.uuid == "MIG-1234abcd-0000-5000-8000-00000000beef"
    assert info.name == "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    assert info.mig_mode == ("enabled; instance MIG-1234abcd-0000-5000-8000-00000000beef, profile 1g.10gb, "
                             "parent GPU-6f1d2a44-0000-4a3b-9c1e-1234567890ab")
    assert info.sm_count == 16 and info.memory_total_bytes == 10 << 30  # the slice's, from torch
    assert info.pci_device_id == "0x2330" and info.sm_clock_max_mhz == 1980  # the board's, from the parent
    from results.files.mig import mig_instance

    slice_ = mig_instance(info)
    assert slice_.profile == "1g.10gb" and slice_.compute_share == pytest.approx(1 / 7)
    assert slice_.parent_uuid == "GPU-6f1d2a44-0000-4a3b-9c1e-1234567890ab"
