"""GPU-to-GPU copy bandwidth on one host (nvbandwidth's CE memcpy tests, in torch) and the per-GPU
aggregate I/O that the 2022 rule's measured basis reads.

Cases (every selected GPU pair of this host; the family runs once per host, on local rank 0):
- `unidirectional`, every ordered pair src -> dst: `dst.copy_(src)` of a device buffer. torch runs a
  contiguous cross-device copy as one cudaMemcpyAsync (the copy engine) on the source device's
  current stream, with peer access enabled where the pair allows it (`can_device_access_peer`);
  without peer access the driver stages the copy through host memory. Bytes counted once.
- `bidirectional`, every unordered pair i < j: i -> j on a stream of GPU i and j -> i on a stream of
  GPU j, both held behind a spin kernel until queued, timed from the common start to the later
  finish (nvbandwidth's spin-kernel start); bytes = the buffer each way, twice (the total).
- Data: random bytes; after the timed loop the destination is compared with the source on the
  device, and a mismatch is status=error, not a number.
- Path from NVML where available: "nvlink" when nvmlDeviceGetP2PStatus reports NVLink P2P, else the
  PCIe topology level from nvmlDeviceGetTopologyCommonAncestor; "unknown" (with the reason) without
  NVML.
- `aggregate_io` per GPU (derived after the run, not timed): the sum of its measured bidirectional
  peer bandwidth over every measured peer plus its host link (`hostlink/bidirectional_pinned` of the
  same GPU and host in the same run). `thresholds` reads exactly this record for the measured I/O.

With fewer than two GPUs (or on the CPU) every case is recorded as skipped with the reason.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Sequence

import torch

from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.registry import Case, register
from bench.nvml import TOPOLOGY, link_path  # noqa: F401 - re-exported (tests, docs)
from bench.timing import SPIN_BEFORE_START_CYCLES, SPIN_BEFORE_TWO_STREAMS_CYCLES, measure
from results.files.schema import Measurement, RunResult

METHOD_VERSION = 1

VARIANTS = {
    "unidirectional": "bytes copied src->dst once per call (copy engine, cudaMemcpyAsync via copy_)",
    "bidirectional": ("sum of both directions: buffer bytes each way, i->j and j->i started together "
                      "on one stream per GPU (copy engine)"),
}
AGGREGATE_CONVENTION = (
    "sum over measured peers of p2p/bidirectional (both directions counted) + this GPU's "
    "hostlink/bidirectional_pinned (both directions); measured counterpart of the 2022 rule's "
    "aggregate bidirectional I/O")

class P2PBenchmark:
    name = "p2p"
    scope = "host"  # planned once per host over its GPUs, not once per device

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        gpus = tuple(range(torch.cuda.device_count())) if backend.kind == "cuda" else ()
        return self._cases(backend, mode, gpus)

    def plan_cases(self, backend: Backend, ctx: Any) -> list[Case]:
        return self._cases(backend, ctx.mode, tuple(ctx.gpus))

    def _cases(self, backend: Backend, mode: str, gpus: Sequence[int]) -> list[Case]:
        size = backend.sizes(mode).hostlink_bytes
        if backend.kind != "cuda" or len(gpus) < 2:
            return [Case("p2p", variant, {"bytes": size}) for variant in VARIANTS]
        uni = [Case("p2p", "unidirectional", {"src": i, "dst": j, "bytes": size})
               for i, j in itertools.permutations(gpus, 2)]
        bi = [Case("p2p", "bidirectional", {"src": i, "dst": j, "bytes": size})
              for i, j in itertools.combinations(gpus, 2)]
        return uni + bi

    def run(self, case: Case, backend: Backend, mode: str) -> Measurement:
        if "src" not in case.params:
            return not_run(case, backend.device_index, "skipped", skip_reason(backend.kind),
                           unit="byte", convention=VARIANTS[case.variant])
        src, dst, size = int(case.params["src"]), int(case.params["dst"]), int(case.params["bytes"])
        a_src = _random_bytes(size, src)
        b_dst = torch.empty(size, dtype=torch.uint8, device=f"cuda:{dst}")
        extra = link_info(src, dst)
        if case.variant == "unidirectional":
            fn = _unidirectional(a_src, b_dst)
            work = float(size)
            checks = [(b_dst, a_src, f"GPU {dst} buffer differs from GPU {src}'s source after {src}->{dst} copies")]
        else:
            a_dst = _random_bytes(size, dst)
            b_src = torch.empty(size, dtype=torch.uint8, device=f"cuda:{src}")
            fn = _bidirectional(a_src, b_dst, a_dst, b_src)
            work = 2.0 * size
            checks = [(b_dst, a_src, f"GPU {dst} buffer differs from GPU {src}'s source"),
                      (b_src, a_dst, f"GPU {src} buffer differs from GPU {dst}'s source")]
        times_s, timing = measure(fn, backend, backend.budget(mode), flush_cache=False,
                                  self_timed_clock="cuda_event")
        torch.cuda.synchronize(src)
        torch.cuda.synchronize(dst)
        problem = next((text for got, want, text in checks
                        if not torch.equal(got, want.to(got.device))), None)
        return measured(case, src, times_s=times_s, timing=timing, work_per_call=work, unit="byte",
                        convention=VARIANTS[case.variant], method_version=METHOD_VERSION,
                        check_error=problem, extra=extra)

    def derive(self, measurements: Sequence[Measurement], run_host: str) -> list[Measurement]:
        return aggregate_io(measurements, run_host)


def skip_reason(kind: str) -> str:
    if kind != "cuda":
        return "peer-to-peer needs at least 2 GPUs; the CPU backend has none"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return (f"peer-to-peer needs at least 2 GPUs; this process sees {count} "
            "(CUDA_VISIBLE_DEVICES / --gpus select which)")


def _random_bytes(size: int, index: int) -> torch.Tensor:
    gen = torch.Generator(device=f"cuda:{index}")
    gen.manual_seed(size + index)
    return torch.randint(0, 256, (size,), dtype=torch.uint8, device=f"cuda:{index}", generator=gen)


def _unidirectional(src: torch.Tensor, dst: torch.Tensor) -> Callable[[], float]:
    stream = torch.cuda.Stream(device=src.device)

    def fn() -> float:
        with torch.cuda.stream(stream):  # copy_ runs on the source device's current stream
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda._sleep(SPIN_BEFORE_START_CYCLES)  # the launch-gap rule (bench/timing.py)
            start.record(stream)
            dst.copy_(src, non_blocking=True)
            end.record(stream)
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return fn


def _bidirectional(a_i: torch.Tensor, b_j: torch.Tensor, a_j: torch.Tensor, b_i: torch.Tensor
                   ) -> Callable[[], float]:
    s_i = torch.cuda.Stream(device=a_i.device)
    s_j = torch.cuda.Stream(device=a_j.device)

    def fn() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        done_j = torch.cuda.Event()
        with torch.cuda.stream(s_i):
            torch.cuda._sleep(SPIN_BEFORE_TWO_STREAMS_CYCLES)  # holds both streams until both copies are queued
            start.record(s_i)
        s_j.wait_event(start)
        with torch.cuda.stream(s_i):  # only GPU i's current stream is s_i: no cross-serialisation
            b_j.copy_(a_i, non_blocking=True)
        with torch.cuda.stream(s_j):
            b_i.copy_(a_j, non_blocking=True)
        done_j.record(s_j)
        s_i.wait_event(done_j)
        end.record(s_i)
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return fn


# --------------------------------------------------------------------------- link state


def link_info(src: int, dst: int) -> dict[str, Any]:
    """Peer access and the NVML path of a GPU pair, for `extra` (never raises)."""
    try:
        peer = bool(torch.cuda.can_device_access_peer(src, dst))
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        peer = None
        peer_reason = f"{type(exc).__name__}: {exc}"
    else:
        peer_reason = None
    from bench.nvml import NVML, NvmlUnavailable

    try:
        nvml = NVML.module()
        path, path_reason = link_path(nvml, NVML.handle(src), NVML.handle(dst))
    except NvmlUnavailable as exc:
        path, path_reason = "unknown", str(exc)
    info: dict[str, Any] = {
        "peer_access": peer,
        "copy_route": ("direct peer copy (peer access enabled by torch)" if peer
                       else "staged through host memory by the CUDA driver (no peer access)"),
        "path": path,
    }
    if peer_reason:
        info["peer_access_reason"] = peer_reason
    if path_reason:
        info["path_reason"] = path_reason
    return info


# --------------------------------------------------------------------------- aggregate I/O


def aggregate_io(measurements: Sequence[Measurement], run_host: str) -> list[Measurement]:
    """Per GPU and host: measured bidirectional peer bandwidth summed over its peers, plus its
    host link when the hostlink suite ran in the same run. Skipped (with the reason) where the
    p2p cases were skipped; status=error when one of its pairs failed (no partial sums)."""
    host_of = lambda m: m.host or run_host  # noqa: E731
    out: list[Measurement] = []
    by_host: dict[str, list[Measurement]] = {}
    for m in measurements:
        if m.benchmark == "p2p" and m.variant in VARIANTS:
            by_host.setdefault(host_of(m), []).append(m)
    for host, records in by_host.items():
        pairs = [m for m in records if m.variant == "bidirectional" and "src" in m.params]
        if not pairs:
            first = next((m for m in records if m.status == "skipped"), records[0])
            case = Case("p2p", "aggregate_io", {} if first.device_index is None else {"device": first.device_index})
            out.append(_stamp(not_run(case, first.device_index, "skipped",
                                      f"no peer measurements: {first.reason}", unit="byte",
                                      convention=AGGREGATE_CONVENTION), first))
            continue
        gpus = sorted({int(m.params[k]) for m in pairs for k in ("src", "dst")})
        for gpu in gpus:
            out.append(_aggregate_one(gpu, host, pairs, measurements, host_of))
    return out


def _aggregate_one(gpu: int, host: str, pairs: Sequence[Measurement], everything: Sequence[Measurement],
                   host_of: Callable[[Measurement], str]) -> Measurement:
    case = Case("p2p", "aggregate_io", {"device": gpu})
    mine = [m for m in pairs if gpu in (int(m.params["src"]), int(m.params["dst"]))]
    template = mine[0]
    failed = [m for m in mine if m.status != "ok" or m.rate is None]
    if failed:
        reasons = "; ".join(f"{m.key}: {m.status}: {m.reason}" for m in failed)
        return _stamp(not_run(case, gpu, "error", f"a peer pair was not measured: {reasons}",
                              unit="byte", convention=AGGREGATE_CONVENTION), template)
    peers = {}
    for m in mine:
        peer = int(m.params["dst"]) if int(m.params["src"]) == gpu else int(m.params["src"])
        peers[str(peer)] = m.rate
    link = next((m for m in everything if m.benchmark == "hostlink" and m.variant == "bidirectional_pinned"
                 and m.device_index == gpu and host_of(m) == host and m.status == "ok" and m.rate), None)
    peer_sum = float(sum(peers.values()))
    total = peer_sum + (link.rate if link is not None else 0.0)
    extra = {
        "peers": peers, "peer_sum": peer_sum,
        "hostlink_bidirectional": link.rate if link is not None else None,
        "hostlink_key": link.key if link is not None else None,
        "summed": ("peer bidirectional over " + ",".join(peers)
                   + (" + host link bidirectional_pinned" if link is not None else " (host link not measured)")),
        "note": ("GPUs not visible to this process (CUDA_VISIBLE_DEVICES, --gpus) and links to other "
                 "hosts are not counted"),
    }
    flags = () if link is not None else ("host_link_missing",)
    return Measurement(
        key=case.key, benchmark="p2p", variant="aggregate_io", precision=None, params=dict(case.params),
        device_index=gpu, status="ok", reason=None, unit="byte", convention=AGGREGATE_CONVENTION,
        work_per_call=0.0, rate=total, flags=flags, method_version=METHOD_VERSION,
        host=template.host, rank=template.rank, extra=extra,
    )


def _stamp(record: Measurement, like: Measurement) -> Measurement:
    import dataclasses

    return dataclasses.replace(record, host=like.host, rank=like.rank, method_version=METHOD_VERSION)


# --------------------------------------------------------------------------- the rendered matrix


def matrix_tables(result: RunResult) -> list[Any]:
    """rich Tables: one GB/s matrix per host and variant (rows: source GPU, columns: destination)."""
    from rich.table import Table

    tables = []
    for host, variant, records in _grouped(result.measurements, result.run.host):
        gpus = sorted({int(m.params[k]) for m in records for k in ("src", "dst")})
        cell: dict[tuple[int, int], str] = {}
        for m in records:
            i, j = int(m.params["src"]), int(m.params["dst"])
            text = f"{m.rate / 1e9:.1f}" if m.status == "ok" and m.rate else m.status
            cell[(i, j)] = text
            if variant == "bidirectional":
                cell[(j, i)] = text
        title = (f"p2p {variant} GB/s on {host} (row: source GPU, column: destination; "
                 f"{'both directions summed' if variant == 'bidirectional' else 'one direction'})")
        table = Table(title=title, title_justify="left", min_width=len(title))
        table.add_column("src \\ dst", justify="right")
        for g in gpus:
            table.add_column(str(g), justify="right")
        for i in gpus:
            table.add_row(str(i), *("-" if i == j else cell.get((i, j), "") for j in gpus))
        tables.append(table)
    return tables


def _grouped(measurements: Iterable[Measurement], run_host: str):
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        if m.benchmark == "p2p" and m.variant in VARIANTS and "src" in m.params:
            groups.setdefault((m.host or run_host, m.variant), []).append(m)
    for (host, variant), records in sorted(groups.items()):
        yield host, variant, records


register(P2PBenchmark())
