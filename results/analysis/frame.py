"""Result files -> one tidy pandas DataFrame, one row per measurement.

Loading is streaming and bounded: each file is validated by `results.store.load`, turned into
plain row tuples, and dropped, so memory grows with the number of measurements, not with the
raw samples in the files. A file that cannot be read is reported (path + problem) and skipped,
or raised when `strict`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from results.files import store
from results.errors import ResultFileError
from results.analysis.identity import device_of, gpu_id, measurement_host
from results.files.schema import RunResult
from results.terminal import printable

if TYPE_CHECKING:
    import pandas as pd

# Column order of the tidy frame (also the CSV / Parquet column order).
COLUMNS = (
    "source",  # result file path
    "label",  # run label
    "host",  # host the measurement ran on
    "started_utc",
    "mode",
    "backend",
    "driver",
    "cuda",
    "torch",
    "gpu",  # per-GPU identity across runs: UUID, else host#index
    "device_index",
    "device_name",  # device model
    "device_uuid",
    "pci_device_id",
    "power_limit_w",
    "key",  # case key, the alignment key
    "benchmark",
    "variant",
    "precision",
    "status",  # ok | skipped | error
    "reason",
    "rate",  # median per-sample rate, per second (NaN unless status == ok)
    "rate_unit",  # flop/s | op/s | byte/s
    "busbw",  # collectives: bus bandwidth, byte/s
    "n_samples",
    "cv",  # coefficient of variation of the per-sample rates
    "flags",  # comma-separated: noisy, throttled, ...
    "throttled",
    "sm_clock_mean_mhz",  # mean SM clock while the case ran (NVML), NaN when unavailable
    "method_version",
    "convention",  # byte/flop counting convention
)

_NAN = float("nan")
CHUNK_ROWS = 20_000  # rows buffered as tuples before they become a (compact) frame chunk


def _i(text: str | None) -> str | None:
    """Intern a repeated string (keys, names, versions) so 10k files share one copy of each."""
    return None if text is None else sys.intern(text)


@dataclass(frozen=True)
class LoadProblem:
    path: str
    problem: str

    def __str__(self) -> str:
        return printable(f"{self.path}: {self.problem}")  # a file name may hold ESC or a newline


@dataclass(frozen=True)
class LoadedFrame:
    frame: "pd.DataFrame"
    files_read: int
    problems: tuple[LoadProblem, ...]


def rows(result: RunResult, source: str) -> list[tuple]:
    """The frame rows (tuples in COLUMNS order) of one run."""
    run = result.run
    run_cells = (_i(run.started_utc), _i(run.mode), _i(run.backend), _i(run.driver), _i(run.cuda), _i(run.torch))
    label = _i(run.label)
    heads: dict[tuple, tuple] = {}  # (host, device, index) -> the row's leading cells, made once per GPU
    out = []
    for m in result.measurements:
        host = measurement_host(result, m)
        dev = device_of(result, m)
        index = m.device_index if m.device_index is not None else (dev.index if dev else None)
        head = heads.get((host, id(dev), index))
        if head is None:
            head = heads[(host, id(dev), index)] = (
                source, label, _i(host), *run_cells, _i(gpu_id(host, dev, index)), index,
                _i(dev.name) if dev else None, _i(dev.uuid) if dev else None, _i(dev.pci_device_id) if dev else None,
                dev.power_limit_w if dev and dev.power_limit_w is not None else _NAN,
            )
        stats = m.stats
        sm = m.telemetry.sm_clock_mhz if m.telemetry is not None else None
        out.append(head + (
            _i(m.key), _i(m.benchmark), _i(m.variant), _i(m.precision), _i(m.status), _i(m.reason),
            m.rate if m.status == "ok" and m.rate is not None else _NAN, _i(f"{m.unit}/s"),
            m.busbw if m.busbw is not None else _NAN, len(m.times_s),
            stats.cv if stats is not None else _NAN, _i(",".join(m.flags)), "throttled" in m.flags,
            sm.mean if sm is not None else _NAN, m.method_version, _i(m.convention),
        ))
    return out


def to_frame(row_tuples: Iterable[tuple]) -> "pd.DataFrame":
    import pandas as pd

    frame = pd.DataFrame.from_records(list(row_tuples), columns=list(COLUMNS))
    frame["device_index"] = frame["device_index"].astype("Int64")
    frame["n_samples"] = frame["n_samples"].astype("int64")
    frame["throttled"] = frame["throttled"].astype(bool)
    for name in ("rate", "busbw", "cv", "power_limit_w", "sm_clock_mean_mhz"):
        frame[name] = frame[name].astype("float64")
    return frame


def frame_of(results: Iterable[tuple[str, RunResult]]) -> "pd.DataFrame":
    """Frame of already loaded runs (source, result)."""
    collected: list[tuple] = []
    for source, result in results:
        collected.extend(rows(result, source))
    return to_frame(collected)


def load_frame(
    paths: Iterable[str | os.PathLike[str]],
    *,
    strict: bool = False,
    on_problem: Callable[[LoadProblem], None] | None = None,
) -> LoadedFrame:
    """Discover and load result files into one frame. Never writes to any file.

    A bad file becomes a LoadProblem (reported through `on_problem` as it is found) and is
    skipped; with `strict` the first one raises ResultFileError. A path that matches nothing
    always raises (a typo is never silent). Rows are buffered as tuples only up to CHUNK_ROWS,
    then packed into a frame chunk, so peak memory stays near the size of the final frame."""
    import pandas as pd

    chunks: list[pd.DataFrame] = []
    pending: list[tuple] = []
    problems: list[LoadProblem] = []
    files = 0
    for path in store.discover(paths):
        try:
            result = store.load(path)
        except ResultFileError as exc:
            if strict:
                raise
            problem = LoadProblem(str(path), exc.problem)
            problems.append(problem)
            if on_problem is not None:
                on_problem(problem)
            continue
        files += 1
        pending.extend(rows(result, str(path)))
        if len(pending) >= CHUNK_ROWS:
            chunks.append(to_frame(pending))
            pending = []
    if pending or not chunks:
        chunks.append(to_frame(pending))
    frame = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
    return LoadedFrame(frame, files, tuple(problems))
