"""Writes synthetic-2gpu-p2p.json: a SYNTHETIC result file (made-up numbers, not a measurement).

Two H100-SXM-like GPUs on one host with p2p unidirectional/bidirectional pair records, the
concurrent all-peers record per GPU, host-link
bidirectional records and the p2p `aggregate_io` records derived from them by the real
`bench.kernels.p2p.aggregate_io`. Tests use it where no two GPUs exist (CI): `tppbench check`
must read the measured I/O from it. Regenerate with:

    .venv/bin/python tests/data/p2p/make_synthetic.py
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.kernels.p2p import aggregate_io
from bench.registry import Case
from results.files.schema import DeviceInfo, Measurement, RunInfo, RunResult, SCHEMA_VERSION, to_dict

HOST = "synthetic-host"
OUT = Path(__file__).with_name("synthetic-2gpu-p2p.json")
SIZE = 512 << 20
# Made-up but plausible NVLink4 / PCIe Gen5 figures (benchmark-anchors.md section 8), byte/s.
UNI = {(0, 1): 376e9, (1, 0): 375e9}
BIDIR = {(0, 1): 745e9}
HOSTLINK_BIDIR = {0: 94e9, 1: 93e9}
ALL_PEERS = {0: 745e9, 1: 744e9}  # with one peer: both directions at once, as the pair


def record(case: Case, device: int, rate: float, convention: str, extra: dict | None = None) -> Measurement:
    work = float(case.params.get("bytes", 0)) * (2 if "bidirectional" in case.variant or case.variant == "all_peers" else 1)
    return Measurement(
        key=case.key, benchmark=case.benchmark, variant=case.variant, precision=None,
        params=dict(case.params), device_index=device, status="ok", reason=None, unit="byte",
        convention=convention, work_per_call=work,
        times_s=(work / rate,) * 3,  # the made-up rate as three equal sample times (ok records carry samples)
        rate=rate, extra=dict(extra or {}),
    )


def build() -> RunResult:
    records = []
    for (src, dst), rate in UNI.items():
        records.append(record(Case("p2p", "unidirectional", {"src": src, "dst": dst, "bytes": SIZE}), src, rate,
                              "bytes copied src->dst once per call (copy engine, cudaMemcpyAsync via copy_)",
                              {"peer_access": True, "path": "nvlink"}))
    for (src, dst), rate in BIDIR.items():
        records.append(record(Case("p2p", "bidirectional", {"src": src, "dst": dst, "bytes": SIZE}), src, rate,
                              "sum of both directions", {"peer_access": True, "path": "nvlink"}))
    for gpu, rate in ALL_PEERS.items():
        case = Case("p2p", "all_peers", {"device": gpu, "peers": 1, "bytes": SIZE})
        records.append(record(case, gpu, rate, "this GPU's total with every peer at once",
                              {"peers": [1 - gpu], "paths": {str(1 - gpu): "nvlink"}, "window_overlap_median": 0.99}))
    for gpu, rate in HOSTLINK_BIDIR.items():
        records.append(record(Case("hostlink", "bidirectional_pinned", {"bytes": SIZE}), gpu, rate,
                              "sum of both directions: buffer bytes each way, started together on two streams"))
    records.extend(aggregate_io(records, HOST))
    devices = tuple(
        DeviceInfo(index=i, backend="cuda", name="NVIDIA H100 80GB HBM3", host=HOST, pci_device_id="0x2330",
                   compute_capability="9.0", sm_count=132, nvlink=tuple({"link": k, "state": "active", "version": "4.0"}
                                                                       for k in range(18)))
        for i in (0, 1))
    run = RunInfo(host=HOST, started_utc="2026-01-01T00:00:00.000000Z", finished_utc="2026-01-01T00:01:00.000000Z",
                  mode="quick", argv=("synthetic",), harness_version="0.1.0",
                  label="SYNTHETIC test fixture: made-up numbers, not a measurement",
                  suites=("hostlink", "p2p"), backend="cuda", world_size=1, hosts=(HOST,))
    return RunResult(run=run, devices=devices, measurements=tuple(records), schema_version=SCHEMA_VERSION)


if __name__ == "__main__":
    OUT.write_text(json.dumps(to_dict(build()), indent=1) + "\n")
    print(OUT)
