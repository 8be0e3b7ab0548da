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
import statistics
from typing import Any, Callable, Iterable, Sequence

import torch

from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.registry import Case, register
from bench.nvml import TOPOLOGY, link_path  # noqa: F401 - re-exported (tests, docs)
from bench.sizing import does_not_fit
from bench.timing import SPIN_BEFORE_START_CYCLES, SPIN_BEFORE_TWO_STREAMS_CYCLES, measure
from results.files.schema import Measurement, RunResult

METHOD_VERSION = 2  # 2: aggregate_io from the concurrent all-peers measurement, never a sum of pairs

VARIANTS = {
    "unidirectional": "bytes copied src->dst once per call (copy engine, cudaMemcpyAsync via copy_)",
    "bidirectional": ("sum of both directions: buffer bytes each way, i->j and j->i started together "
                      "on one stream per GPU (copy engine)"),
    "all_peers": ("this GPU's total with every peer at once: a buffer from it to each peer and one from "
                  "each peer to it, 2 x (peers) x buffer bytes, all copies started together, one stream "
                  "per copy on its source GPU (nvbandwidth's all_to_one + one_to_all at once); rate = "
                  "bytes / the window from the shared start to the last copy's end"),
}
AGGREGATE_CONVENTION = (
    "this GPU's peer I/O measured with every peer at once (p2p/all_peers, both directions), plus "
    "hostlink/bidirectional_pinned where the peers are reached over NVLink (a separate link from the "
    "PCIe host link); never a sum of pairs measured one at a time. Without all_peers, the largest "
    "single pair is a flagged lower bound. Measured counterpart of the 2022 rule's aggregate "
    "bidirectional I/O")
LOWER_BOUND_FLAG = "lower_bound"

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
            return [Case("p2p", variant, {"bytes": size}) for variant in ("unidirectional", "bidirectional")]
        uni = [Case("p2p", "unidirectional", {"src": i, "dst": j, "bytes": size})
               for i, j in itertools.permutations(gpus, 2)]
        bi = [Case("p2p", "bidirectional", {"src": i, "dst": j, "bytes": size})
              for i, j in itertools.combinations(gpus, 2)]
        every = [Case("p2p", "all_peers", {"device": g, "peers": len(gpus) - 1, "bytes": size}) for g in gpus]
        return uni + bi + every

    def run(self, case: Case, backend: Backend, mode: str) -> Measurement:
        if case.variant == "all_peers" and "device" in case.params:
            return self._all_peers(case, backend, mode)
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

    def _all_peers(self, case: Case, backend: Backend, mode: str) -> Measurement:
        gpu, size = int(case.params["device"]), int(case.params["bytes"])
        peers = [g for g in range(torch.cuda.device_count()) if g != gpu][: int(case.params["peers"])]
        free_here = int(torch.cuda.mem_get_info(gpu)[0])
        problem = does_not_fit((1 + len(peers)) * size, free_here, f"GPU {gpu}'s {1 + len(peers)} buffers")
        if problem is not None:  # sizes follow the mode, never free memory (bench/sizing.py)
            return not_run(case, gpu, "skipped", problem, unit="byte", convention=VARIANTS["all_peers"])
        mine = _random_bytes(size, gpu)
        theirs = {p: _random_bytes(size, p) for p in peers}
        inbound = {p: torch.empty(size, dtype=torch.uint8, device=f"cuda:{gpu}") for p in peers}
        outbound = {p: torch.empty(size, dtype=torch.uint8, device=f"cuda:{p}") for p in peers}
        copies = [(mine, outbound[p]) for p in peers] + [(theirs[p], inbound[p]) for p in peers]
        overlaps: list[float] = []
        fn = _all_at_once(copies, gpu, overlaps)
        times_s, timing = measure(fn, backend, backend.budget(mode), flush_cache=False,
                                  self_timed_clock="cuda_event")
        for g in (gpu, *peers):
            torch.cuda.synchronize(g)
        problem = next((f"copy {src.device}->{dst.device} differs from its source"
                        for src, dst in copies if not torch.equal(dst, src.to(dst.device))), None)
        extra = {"peers": peers, "copies": len(copies), "paths": {str(p): link_info(gpu, p)["path"] for p in peers},
                 "window_overlap_median": statistics.median(overlaps) if overlaps else None,
                 "window_overlap_note": ("mean copy duration / window: 1.0 when every copy ran the whole "
                                         "window, lower when copies finished apart")}
        return measured(case, gpu, times_s=times_s, timing=timing, work_per_call=float(len(copies) * size),
                        unit="byte", convention=VARIANTS["all_peers"], method_version=METHOD_VERSION,
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


def _all_at_once(copies: Sequence[tuple[torch.Tensor, torch.Tensor]], gpu: int, overlaps: list[float]
                 ) -> Callable[[], float]:
    """Every copy on its own stream of its source GPU, all held behind one spin and one start event
    on `gpu`, so they run together; the window ends when the last one ends. Each copy's stream is
    current only on its source device, so torch's cross-device barrier meets the destination's idle
    default stream and never serialises the copies (aten Copy.cu, copy_device_to_device)."""
    main = torch.cuda.Stream(device=f"cuda:{gpu}")
    streams = [torch.cuda.Stream(device=src.device) for src, _ in copies]

    def fn() -> float:
        start = torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(main):
            torch.cuda._sleep(SPIN_BEFORE_TWO_STREAMS_CYCLES)  # holds every stream until all are queued
            start.record(main)
        ends = []
        for (src, dst), stream in zip(copies, streams):
            stream.wait_event(start)
            with torch.cuda.stream(stream):
                dst.copy_(src, non_blocking=True)
            end = torch.cuda.Event(enable_timing=True)
            end.record(stream)
            ends.append(end)
        for end in ends:
            main.wait_event(end)
        last = torch.cuda.Event(enable_timing=True)
        last.record(main)
        last.synchronize()
        window_s = start.elapsed_time(last) / 1e3
        durations = [start.elapsed_time(end) / 1e3 for end in ends]
        overlaps.append(sum(durations) / (len(durations) * window_s) if window_s > 0 else 0.0)
        return window_s
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
    """This GPU's measured I/O: the concurrent all-peers figure (plus the host link when the peers are
    over NVLink); without it, the largest single pair, flagged as a lower bound. Pairs measured one
    at a time are never added: on NVSwitch and PCIe-switch boards they share this GPU's links."""
    case = Case("p2p", "aggregate_io", {"device": gpu})
    mine = [m for m in pairs if gpu in (int(m.params["src"]), int(m.params["dst"]))]
    concurrent = next((m for m in everything if m.benchmark == "p2p" and m.variant == "all_peers"
                       and m.params.get("device") == gpu and host_of(m) == host), None)
    template = concurrent or mine[0]
    ok_pairs = [m for m in mine if m.status == "ok" and m.rate]
    link = next((m for m in everything if m.benchmark == "hostlink" and m.variant == "bidirectional_pinned"
                 and m.device_index == gpu and host_of(m) == host and m.status == "ok" and m.rate), None)
    flags: list[str] = []
    extra: dict[str, Any] = {
        "pairs": {str(_peer(m, gpu)): m.rate for m in ok_pairs},
        "note": ("GPUs not visible to this process (CUDA_VISIBLE_DEVICES, --gpus) and links to other "
                 "hosts are not counted"),
    }
    if concurrent is not None and concurrent.status == "ok" and concurrent.rate:
        peers_rate, extra["peers_from"] = float(concurrent.rate), concurrent.key
        extra["window_overlap_median"] = concurrent.extra.get("window_overlap_median")
        paths = concurrent.extra.get("paths") or {}
    elif ok_pairs:
        best = max(ok_pairs, key=lambda m: m.rate)
        peers_rate, extra["peers_from"] = float(best.rate), best.key
        paths = {str(_peer(m, gpu)): m.extra.get("path") for m in ok_pairs}
        flags.append(LOWER_BOUND_FLAG)
        extra["lower_bound_reason"] = ("no concurrent all-peers measurement: the largest single pair "
                                       "(pairs measured one at a time share this GPU's links; never summed)")
    else:
        failed = [m for m in ([concurrent] if concurrent else []) + mine if m.status != "ok"]
        reasons = "; ".join(f"{m.key}: {m.status}: {m.reason}" for m in failed) or "no peer figure"
        return _stamp(not_run(case, gpu, "error", f"no peer figure was measured: {reasons}",
                              unit="byte", convention=AGGREGATE_CONVENTION), template)
    over_nvlink = bool(paths) and all(str(p).startswith("nvlink") for p in paths.values())
    total = peers_rate
    extra["peers_rate"] = peers_rate
    extra["hostlink_bidirectional"] = link.rate if link is not None else None
    if link is None:
        flags.append("host_link_missing")
        extra["summed"] = "peers only (host link not measured)"
    elif over_nvlink:
        total += float(link.rate)
        extra["summed"] = "peers (NVLink) + host link bidirectional_pinned (PCIe): separate links"
    else:
        total = max(peers_rate, float(link.rate))
        flags.append(LOWER_BOUND_FLAG)
        extra["summed"] = ("the larger of peers and host link: the peers are not (all) over NVLink, so peer "
                           "traffic may share the PCIe link the host link uses; not added")
        extra.setdefault("lower_bound_reason", "peer and host traffic may share one PCIe link")
    return Measurement(
        key=case.key, benchmark="p2p", variant="aggregate_io", precision=None, params=dict(case.params),
        device_index=gpu, status="ok", reason=None, unit="byte", convention=AGGREGATE_CONVENTION,
        work_per_call=0.0, rate=total, flags=tuple(dict.fromkeys(flags)), method_version=METHOD_VERSION,
        host=template.host, rank=template.rank, extra=extra,
    )


def _peer(m: Measurement, gpu: int) -> int:
    return int(m.params["dst"]) if int(m.params["src"]) == gpu else int(m.params["src"])


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
