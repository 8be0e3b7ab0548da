"""The report's measurement sections, read from result files: peak per precision, bandwidth,
peer-to-peer matrices, per-case telemetry and the run context."""

from __future__ import annotations

from statistics import median
from typing import Any, Callable, Iterable, Mapping, Sequence

from results.analysis.identity import model_name
from results.report.model import BandwidthBar, CaseTelemetry, PeerMatrix, PrecisionBar, RunContext
from results.files.schema import DeviceInfo, Measurement, RunResult

RatioLookup = Callable[[str, int], Mapping[str, float]]  # (file, device index) -> measured/peak per precision


def _groups(loaded: Sequence[tuple[str, RunResult]]) -> Iterable[tuple[str, RunResult, list[DeviceInfo]]]:
    """(group label, result, devices) per file and device model."""
    for source, result in loaded:
        models: dict[str | None, list[DeviceInfo]] = {}
        for d in result.devices:
            models.setdefault(model_name(d), []).append(d)
        for devices in models.values():
            yield f"{devices[0].name} in {source}", result, devices


def _ok(result: RunResult, devices: Sequence[DeviceInfo], benchmark: str) -> list[Measurement]:
    indices = {d.index for d in devices}
    single = len(result.devices) == 1
    return [
        m for m in result.measurements
        if m.benchmark == benchmark and m.status == "ok" and m.rate is not None
        and (m.device_index in indices or (m.device_index is None and single))
    ]


def _per_device_best(ms: Iterable[Measurement], field: str) -> dict[str, dict[Any, Measurement]]:
    """name -> device index -> the best (highest-rate) measurement."""
    out: dict[str, dict[Any, Measurement]] = {}
    for m in ms:
        name = getattr(m, field) or m.variant
        slot = out.setdefault(name, {})
        if m.device_index not in slot or m.rate > slot[m.device_index].rate:  # type: ignore[operator]
            slot[m.device_index] = m
    return out


def precision(loaded: Sequence[tuple[str, RunResult]], ratios: RatioLookup) -> list[PrecisionBar]:
    """Per file and device model: best matmul rate per precision (median over devices) vs peak."""
    bars = []
    for group, result, devices in _groups(loaded):
        source = next(s for s, r in loaded if r is result)
        to_peak = ratios(source, devices[0].index)
        found = _per_device_best(_ok(result, devices, "matmul"), "precision")
        for precision, per_device in sorted(found.items(), key=lambda kv: _precision_rank(kv[0])):
            rates = [float(m.rate) for m in per_device.values()]  # type: ignore[arg-type]
            first = next(iter(per_device.values()))
            best_first = float(first.rate)  # type: ignore[arg-type]
            ratio = to_peak.get(precision)
            peak = best_first / ratio if ratio else None
            bars.append(PrecisionBar(group, precision, median(rates), min(rates), max(rates),
                                     len(rates), peak, f"{first.unit}/s"))
    return bars


PRECISION_ORDER = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4")


def _precision_rank(name: str) -> tuple[int, str]:
    return (PRECISION_ORDER.index(name) if name in PRECISION_ORDER else len(PRECISION_ORDER), name)



def bandwidth(loaded: Sequence[tuple[str, RunResult]]) -> list[BandwidthBar]:
    bars = []
    for group, result, devices in _groups(loaded):
        for benchmark in ("memory", "hostlink"):
            for variant, per_device in _per_device_best(_ok(result, devices, benchmark), "variant").items():
                rates = [float(m.rate) for m in per_device.values()]  # type: ignore[arg-type]
                first = next(iter(per_device.values()))
                bars.append(BandwidthBar(group, benchmark, variant, median(rates), min(rates),
                                         max(rates), len(rates), first.convention))
    return bars


def peers(loaded: Sequence[tuple[str, RunResult]]) -> list[PeerMatrix]:
    """p2p measurements whose params name integer `src` and `dst` devices, as matrices."""
    out = []
    for source, result in loaded:
        cells: dict[str, dict[tuple[int, int], float]] = {}
        for m in result.measurements:
            src, dst = m.params.get("src"), m.params.get("dst")
            if m.benchmark != "p2p" or m.status != "ok" or m.rate is None:
                continue
            if not isinstance(src, int) or not isinstance(dst, int):
                continue
            cell = cells.setdefault(m.variant, {})
            cell[(src, dst)] = max(cell.get((src, dst), 0.0), float(m.rate))
        for variant, cell in cells.items():
            devs = tuple(sorted({i for pair in cell for i in pair}))
            values = tuple(tuple(cell.get((s, d)) for d in devs) for s in devs)
            out.append(PeerMatrix(f"{source}", variant, devs, values))
    return out


# --------------------------------------------------------------------------- telemetry, context


def telemetry(loaded: Sequence[tuple[str, RunResult]]) -> list[CaseTelemetry]:
    out = []
    for source, result in loaded:
        for m in result.measurements:
            if m.status != "ok":
                continue
            t = m.telemetry
            sm = t.sm_clock_mhz if t is not None else None
            out.append(CaseTelemetry(
                source=source, device="" if m.device_index is None else f"gpu{m.device_index}",
                key=m.key, flags=tuple(m.flags),
                sm_clock_mhz=(sm.min, sm.mean, sm.max) if sm is not None else None,
                power_w_mean=t.power_w.mean if t is not None and t.power_w is not None else None,
                temperature_c_max=t.temperature_c.max if t is not None and t.temperature_c is not None else None,
                throttle_reasons=tuple(t.throttle_reasons) if t is not None else (),
                unavailable=(t.reason if t is not None and not t.available else
                             ("no telemetry recorded" if t is None else None)),
            ))
    return out


RUN_FIELDS = ("host", "label", "started_utc", "finished_utc", "mode", "complete", "incomplete_reason",
              "harness_version", "git_commit", "backend", "python", "torch", "cuda", "driver", "nccl",
              "os", "cpu_model", "world_size", "argv", "env")
DEVICE_FIELDS = ("index", "name", "backend", "pci_device_id", "uuid", "compute_capability", "sm_count",
                 "sm_clock_max_mhz", "sm_clock_app_mhz", "mem_clock_max_mhz", "memory_total_bytes",
                 "memory_bus_width_bits", "ecc_mode", "mig_mode", "power_limit_w", "pcie_gen_current",
                 "pcie_gen_max", "pcie_width_current", "pcie_width_max", "nvlink", "threads")


def context(source: str, result: RunResult) -> RunContext:
    def text(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, Mapping):
            return "; ".join(f"{k}={v}" for k, v in value.items()) or "-"
        if isinstance(value, (list, tuple)):
            return " ".join(str(v) for v in value) if all(not isinstance(v, Mapping) for v in value) \
                else "; ".join(", ".join(f"{k}={x}" for k, x in v.items()) for v in value)
        return str(value)

    run = tuple((f, text(getattr(result.run, f))) for f in RUN_FIELDS)
    devices = tuple(
        tuple((f, text(getattr(d, f)) if getattr(d, f) is not None or f not in d.unavailable
               else f"- ({d.unavailable[f]})") for f in DEVICE_FIELDS)
        for d in result.devices
    )
    return RunContext(source, run, devices)


def soaks(loaded: Sequence[tuple[str, RunResult]]) -> list:
    """Every ok soak record's windows, as time series."""
    from results.report.model import SoakSeries

    out = []
    for source, result in loaded:
        for m in result.measurements:
            windows = m.extra.get("windows") if m.benchmark == "soak" and m.status == "ok" else None
            if not isinstance(windows, (list, tuple)) or not windows:
                continue
            ws = [w for w in windows if isinstance(w, dict) and isinstance(w.get("rate"), (int, float))]
            out.append(SoakSeries(
                label=f"{source.rsplit('/', 1)[-1]}: device {m.device_index if m.device_index is not None else 0} {m.precision}",
                unit=m.unit, t_s=tuple(float(w.get("t_s", i)) for i, w in enumerate(ws)),
                rate_per_s=tuple(float(w["rate"]) for w in ws),
                power_w=tuple(w.get("power_w") if isinstance(w.get("power_w"), (int, float)) else None for w in ws),
                burst_rate=m.extra.get("burst_rate"), steady_rate=m.extra.get("steady_rate"),
                sustained_ratio=m.extra.get("sustained_ratio")))
    return out
