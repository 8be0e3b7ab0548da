"""The NVML session: the one place that imports pynvml, initialised lazily and shared by the probe,
the telemetry sampler, host-link placement and peer-link paths; and the mapping from torch's
`cuda:N` to NVML's device handle, by identity (UUID, MIG UUID, PCI bus id) only.

NVML numbers GPUs in PCI order and ignores CUDA_VISIBLE_DEVICES; CUDA numbers them fastest first
unless CUDA_DEVICE_ORDER=PCI_BUS_ID, so an index is never taken for the other's.
"""

from __future__ import annotations

import atexit
import os
import threading
from types import ModuleType
from typing import Any


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used at all; str() is the reason, e.g. 'NVML unavailable: ...'."""


class NvmlSession:
    """The one place that imports pynvml: initialises NVML once, resolves device handles, shuts down.

    A failure to import or initialise is remembered until `shutdown()`, so a run without NVML pays
    for the attempt once. Thread-safe; NVML calls themselves are thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: ModuleType | None = None
        self._failure: str | None = None
        self._handles: dict[int, Any] = {}
        self._atexit_registered = False

    def module(self) -> ModuleType:
        """The initialised pynvml module; raises NvmlUnavailable with the reason otherwise."""
        with self._lock:
            if self._module is not None:
                return self._module
            if self._failure is not None:
                raise NvmlUnavailable(self._failure)
            try:
                import pynvml  # noqa: PLC0415 - lazy on purpose: NVML is optional
            except Exception as exc:  # ImportError, or a broken install
                self._failure = f"NVML unavailable: pynvml not importable ({exc})"
                raise NvmlUnavailable(self._failure) from None
            try:
                pynvml.nvmlInit()
            except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
                self._failure = f"NVML unavailable: nvmlInit failed: {error_text(exc)}"
                raise NvmlUnavailable(self._failure) from None
            self._module = pynvml
            if not self._atexit_registered:
                atexit.register(self.shutdown)
                self._atexit_registered = True
            return pynvml

    def handle(self, cuda_index: int, torch_props: Any = None) -> Any:
        """NVML handle of torch's `cuda:<cuda_index>` (cached); raises NvmlUnavailable."""
        nvml = self.module()
        with self._lock:
            if cuda_index in self._handles:
                return self._handles[cuda_index]
        if torch_props is None:
            torch_props, _ = torch_cuda_props(cuda_index)
        try:
            handle = resolve_handle(nvml, cuda_index, torch_props)
        except Exception as exc:
            raise NvmlUnavailable(
                f"NVML: no device handle for cuda:{cuda_index}: {error_text(exc)}"
            ) from None
        with self._lock:
            self._handles[cuda_index] = handle
        return handle

    def shutdown(self) -> None:
        """nvmlShutdown if initialised; forgets cached handles and failures. Never raises."""
        with self._lock:
            module, self._module = self._module, None
            self._failure = None
            self._handles.clear()
        if module is not None:
            try:
                module.nvmlShutdown()
            except Exception:
                pass


NVML = NvmlSession()


def nvml_shutdown() -> None:
    """Release NVML now (the session also registers this at exit; a multi-rank process that leaves
    with os._exit skips it, and the process exit frees NVML)."""
    NVML.shutdown()


def error_text(exc: BaseException) -> str:
    """An exception's message; NVMLError's str() is its NVML text, e.g. 'Not Supported'."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    if hasattr(exc, "value") and text:
        return text  # NVMLError and its subclasses
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def resolve_handle(nvml: ModuleType, cuda_index: int, torch_props: Any) -> Any:
    """NVML's handle of torch's cuda:<index>, by identity only: torch's UUID, then its PCI bus id,
    then a UUID named in CUDA_VISIBLE_DEVICES. A CUDA index is used as an NVML index only under
    CUDA_DEVICE_ORDER=PCI_BUS_ID: otherwise CUDA numbers GPUs fastest first and NVML in PCI order,
    so the guess could attach another GPU's telemetry and CPU affinity. Raises when nothing maps."""
    uuid = torch_uuid(torch_props)
    # Under MIG, CUDA's UUID is the compute instance's: NVML knows it as MIG-<uuid>, not GPU-<uuid>
    # (the PCI lookup below would return the parent GPU, pairing its name with the slice's SMs).
    mig = f"MIG-{uuid[4:]}" if uuid is not None and uuid.startswith("GPU-") else None
    lookups = ((uuid, "nvmlDeviceGetHandleByUUID"), (mig, "nvmlDeviceGetHandleByUUID"),
               (torch_pci_bus_id(torch_props), "nvmlDeviceGetHandleByPciBusId"))
    for key, function in lookups:
        if key is not None:
            try:
                return getattr(nvml, function)(key)
            except Exception:
                pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    entry = visible[cuda_index] if cuda_index < len(visible) else None
    if entry is not None and entry.startswith(("GPU-", "MIG-")):
        return nvml.nvmlDeviceGetHandleByUUID(entry)
    if os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID":  # CUDA order is PCI order: indices agree
        return nvml.nvmlDeviceGetHandleByIndex(int(entry) if entry is not None and entry.isdigit() else cuda_index)
    raise LookupError("torch gave no UUID or PCI bus id that NVML knows, and CUDA's device order is not "
                      "PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID is not set): not guessing by index")


def torch_cuda_props(index: int) -> tuple[Any, str | None]:
    """(torch.cuda device properties, None) or (None, reason)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None, "torch: CUDA not available"
        return torch.cuda.get_device_properties(index), None
    except Exception as exc:
        return None, f"torch: {error_text(exc)}"


def torch_uuid(props: Any) -> str | None:
    raw = getattr(props, "uuid", None) if props is not None else None
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def torch_pci_bus_id(props: Any) -> str | None:
    # torch's pci_device_id is the PCI slot number (cudaDeviceProp.pciDeviceID), not a product id.
    parts = [getattr(props, n, None) for n in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    if props is None or not all(isinstance(p, int) for p in parts):
        return None
    return "%08X:%02X:%02X.0" % tuple(parts)
