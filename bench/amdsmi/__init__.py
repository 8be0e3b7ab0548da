"""All amdsmi reading (AMD GPUs under ROCm), in one package as NVML's is in bench.nvml: the session
and the HIP-index -> handle mapping by PCI BDF or UUID, identity, per-sample readers and the
energy accumulator. Nothing else imports amdsmi (tests/test_layout.py)."""

from bench.amdsmi.provider import (AMDSMI, AmdsmiUnavailable, amdsmi_energy_window, amdsmi_identity,
                                   amdsmi_sample_readers, celsius)

__all__ = ["AMDSMI", "AmdsmiUnavailable", "amdsmi_energy_window", "amdsmi_identity",
           "amdsmi_sample_readers", "celsius"]
