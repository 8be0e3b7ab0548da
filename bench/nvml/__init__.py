"""All NVML reading, in one package: the session (bench.nvml.session), the probe's device fields
(fields), the telemetry and placement reads (samples) and peer-link paths (links). Nothing outside
this package imports pynvml or calls it (tests/test_layout.py). Everything is re-exported here."""

from bench.nvml.fields import (FieldReader, driver_version, mig_mode_text, mig_parent, read_device_fields,
                               read_mig_instance)
from bench.nvml.links import TOPOLOGY, link_path
from bench.nvml.samples import (NVML_ERROR_FUNCTION_NOT_FOUND, POWER_AVERAGE_SOURCE, POWER_INSTANT_SOURCE,
                                cpu_affinity_mask, field_value, gpu_pci_bus_id, numa_node, power_reader,
                                sample_readers)
from bench.nvml.session import (NVML, NvmlSession, NvmlUnavailable, error_text, nvml_shutdown, resolve_handle,
                                torch_cuda_props, torch_pci_bus_id, torch_uuid)

__all__ = [
    "FieldReader", "driver_version", "mig_mode_text", "mig_parent", "read_device_fields", "read_mig_instance",
    "TOPOLOGY", "link_path",
    "NVML_ERROR_FUNCTION_NOT_FOUND", "POWER_AVERAGE_SOURCE", "POWER_INSTANT_SOURCE", "cpu_affinity_mask",
    "field_value", "gpu_pci_bus_id", "numa_node", "power_reader", "sample_readers",
    "NVML", "NvmlSession", "NvmlUnavailable", "error_text", "nvml_shutdown", "resolve_handle",
    "torch_cuda_props", "torch_pci_bus_id", "torch_uuid",
]
