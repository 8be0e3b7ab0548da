"""The SQL over an index, in one place: the fleet statistics, outliers and slowest GPU per host
(the same definitions as `results.fleet`, which computes them over raw files with pandas), the
CSV/Parquet exports, and the selection of result files for `compare` and `report`.

DuckDB runs embedded, streaming over the Parquet parts the manifest lists (pruned by month for a
date range), with a memory limit and a spill folder in the system temp folder, so memory stays
flat in the number of files. Only small results come back to Python: per-model statistics,
flagged GPUs and hosts, and one row per host.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from results.analysis import fleet
from results.errors import TppbenchError
from results.analysis.frame import COLUMNS
from results.index import layout, tables

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

MEMORY_LIMIT = "640MB"
GROUP = ", ".join(fleet.GROUP)


@dataclass(frozen=True)
class Selection:
    """Which measurements and files: one host, device models whose name contains `model`
    (case-insensitive), runs started on or after `since` and on or before `until` (UTC dates)."""

    host: str | None = None
    model: str | None = None
    since: datetime.date | None = None
    until: datetime.date | None = None

    def is_everything(self) -> bool:
        return self == Selection()

    def describe(self) -> str:
        parts = [f"host {self.host}" if self.host else "", f"model ~ {self.model}" if self.model else "",
                 f"from {self.since}" if self.since else "", f"to {self.until}" if self.until else ""]
        return ", ".join(p for p in parts if p) or "everything"

    def where(self, model_column: str) -> str:
        """SQL condition over a table with host, run_time and `model_column`."""
        terms = ["TRUE"]
        if self.host is not None:
            terms.append(f"host = {literal(self.host)}")
        if self.model is not None:
            terms.append(model_column.format(needle=literal(self.model.lower())))
        if self.since is not None:
            terms.append(f"run_time >= TIMESTAMPTZ {literal(self.since.isoformat() + ' 00:00:00+00')}")
        if self.until is not None:
            end = self.until + datetime.timedelta(days=1)
            terms.append(f"run_time < TIMESTAMPTZ {literal(end.isoformat() + ' 00:00:00+00')}")
        return " AND ".join(terms)

    def keeps_month(self, month: str) -> bool:
        if month == tables.UNKNOWN:
            return self.since is None and self.until is None
        return ((self.since is None or month >= self.since.strftime("%Y-%m"))
                and (self.until is None or month <= self.until.strftime("%Y-%m")))


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class IndexFleetAnalysis:
    """The fleet tables of `results.fleet.FleetAnalysis`, computed by SQL over an index."""

    rule: fleet.OutlierRule
    summary: "pd.DataFrame"
    gpu_outliers: "pd.DataFrame"
    host_outliers: "pd.DataFrame"
    slowest: "pd.DataFrame"  # the first `shown` rows when the caller asked for only those
    slowest_rows: int  # rows of the whole slowest-GPU table (one per host)
    measurement_count: int
    gpu_count: int
    host_count: int
    files_read: int
    skipped: int


class IndexReader:
    """A read-only view of one index through DuckDB: views `m` (measurements) and `f` (files),
    both limited to `selection`."""

    def __init__(self, folder: str | os.PathLike[str], selection: Selection = Selection()) -> None:
        import duckdb

        self.folder = Path(folder)
        self.selection = selection
        self.manifest = layout.open_existing(self.folder)
        self._rule: fleet.OutlierRule | None = None  # the rule the fleet temp tables were built for
        self._spill = tempfile.mkdtemp(prefix="tppbench-index-")
        self.con = duckdb.connect(config={
            "threads": max(1, min(os.cpu_count() or 1, 4)), "memory_limit": MEMORY_LIMIT,
            "temp_directory": self._spill, "preserve_insertion_order": False,
        })
        try:
            with _index_errors(self.folder):
                self._views(selection)
        except BaseException:
            self.close()
            raise

    def _views(self, selection: Selection) -> None:
        parts = [str(self.folder / p.path) for p in self.manifest.parts.values()
                 if selection.keeps_month(p.path.split("month=", 1)[1].split("/", 1)[0])]
        if parts:
            self.con.execute(f"CREATE VIEW m_all AS SELECT * FROM read_parquet([{', '.join(map(literal, parts))}])")
        else:
            self.con.register("m_all", tables.MEASUREMENTS.empty_table())
        files = str(self.folder / self.manifest.files_table) if self.manifest.files_table else None
        if files:
            self.con.execute(f"CREATE VIEW f_all AS SELECT * FROM read_parquet({literal(files)})")
        else:
            self.con.register("f_all", tables.FILES.empty_table())
        self.con.execute("CREATE VIEW m AS SELECT * FROM m_all WHERE "
                         + selection.where("contains(lower(device_name), {needle})"))
        self.con.execute("CREATE VIEW f AS SELECT * FROM f_all WHERE status = 'indexed' AND "
                         + selection.where("list_bool_or([contains(lower(n), {needle}) for n in device_names])"))

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self._spill, ignore_errors=True)

    def __enter__(self) -> "IndexReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ queries

    def df(self, sql: str) -> "pd.DataFrame":
        with _index_errors(self.folder):
            return self.con.execute(sql).df()

    def scalar(self, sql: str) -> object:
        with _index_errors(self.folder):
            return self.con.execute(sql).fetchone()[0]

    def result_paths(self) -> list[str]:
        """Indexed result files matching the selection, in path order."""
        with _index_errors(self.folder):
            return [r[0] for r in self.con.execute("SELECT path FROM f ORDER BY path").fetchall()]

    def skipped(self) -> int:
        return int(self.scalar("SELECT count(*) FROM f_all WHERE status = 'skipped'"))

    def first_skipped(self) -> tuple[str, str | None] | None:
        """(path, problem) of the first file recorded as bad, in path order; None when there is none."""
        with _index_errors(self.folder):
            return self.con.execute(
                "SELECT path, problem FROM f_all WHERE status = 'skipped' ORDER BY path LIMIT 1").fetchone()

    def records(self, path: str) -> bool:
        """Whether the index records the result file `path` (an absolute path), bad or not."""
        with _index_errors(self.folder):
            return self.con.execute("SELECT count(*) FROM f_all WHERE path = ?", [path]).fetchone()[0] > 0

    def fleet(self, rule: fleet.OutlierRule, shown: int | None = None) -> IndexFleetAnalysis:
        """The fleet tables; with `shown`, the slowest-GPU table (a row per host: 100,000s of them)
        only to its first `shown` rows, and its length counted."""
        self._fleet_tables(rule)
        counts = self.con.execute("SELECT count(*), count(DISTINCT gpu), count(DISTINCT host) FROM m").fetchone()
        slowest = self.df(SLOWEST_SQL + ("" if shown is None else f"LIMIT {int(shown)}"))
        slowest_rows = len(slowest) if shown is None else int(self.scalar(SLOWEST_ROWS_SQL))
        return IndexFleetAnalysis(
            rule, self.df(SUMMARY_SQL),
            self.df(_per_unit_sql("gfn", ["host", "gpu", "device_index", "device_name"])),
            self.df(_per_unit_sql("hfn", ["host", "device_name"])), slowest, slowest_rows,
            int(counts[0]), int(counts[1]), int(counts[2]),
            int(self.scalar("SELECT count(*) FROM f")), self.skipped(),
        )

    def export(self, rule: fleet.OutlierRule, target: Path, file_format: str) -> Path:
        """Write the per-measurement table with its outlier columns (the `fleet --csv/--parquet`
        table) atomically to `target`, streaming from DuckDB."""
        self._fleet_tables(rule)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        options = "FORMAT csv, HEADER true" if file_format == "csv" else "FORMAT parquet, COMPRESSION zstd"
        try:
            with _index_errors(self.folder):
                self.con.execute(f"COPY ({EXPORT_SQL}) TO {literal(str(tmp))} ({options})")
            os.replace(tmp, target)
        except OSError as exc:
            raise TppbenchError(f"{target}: cannot write: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def _fleet_tables(self, rule: fleet.OutlierRule) -> None:
        """Temp tables: groups (one per case key + device model + unit, with the statistics),
        gf (per GPU and group, flagged) and hf (per host and group, flagged)."""
        if self._rule == rule:
            return
        with _index_errors(self.folder):
            for sql in FLEET_TABLES_SQL(rule):
                self.con.execute(sql)
            collided = self.con.execute("SELECT count(*) FROM groups WHERE collided").fetchone()[0]
        if collided:  # a 64-bit hash collision between two case keys: never silently merged
            raise TppbenchError(f"{self.folder}: two case groups share a hash; cannot analyse")
        self._rule = rule


@contextlib.contextmanager
def _index_errors(folder: Path) -> Iterator[None]:
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise TppbenchError(f"{folder}: cannot read the index ({first}); it is left as it is: "
                            "move it away or build a new one in another folder") from None


# ---------------------------------------------------------------------- the fleet SQL

# Rows are grouped by gid, a 64-bit hash of (key, device model, rate unit): integer keys keep the
# aggregations over millions of rows cheap; a collision is detected (min <> max) and refused.
OK_ROWS = f"""SELECT hash({GROUP}) AS gid, * FROM m
WHERE status = 'ok' AND rate IS NOT NULL AND NOT isnan(rate) AND device_name IS NOT NULL"""


def FLEET_TABLES_SQL(rule: fleet.OutlierRule) -> list[str]:  # noqa: N802 - SQL text, like the constants
    return [
        "DROP VIEW IF EXISTS ok; DROP VIEW IF EXISTS gfn; DROP VIEW IF EXISTS hfn; DROP TABLE IF EXISTS groups; "
        "DROP TABLE IF EXISTS gf; DROP TABLE IF EXISTS hf; DROP TABLE IF EXISTS gpu_names; DROP TABLE IF EXISTS host_names",
        f"CREATE TEMP VIEW ok AS {OK_ROWS}",
        GROUPS_SQL,
        # GPUs and hosts numbered in name order: the value tables hold 1.5 million rows for 100,000
        # files, and with the names in them they took twice the memory (DuckDB spilled); min() and
        # ORDER BY over the numbers are min() and ORDER BY over the names
        "CREATE TEMP TABLE gpu_names AS SELECT gpu, row_number() OVER (ORDER BY gpu) AS gpu_id "
        "FROM (SELECT DISTINCT gpu FROM ok)",
        "CREATE TEMP TABLE host_names AS SELECT host, row_number() OVER (ORDER BY host) AS host_id "
        "FROM (SELECT DISTINCT host FROM ok)",
        # each value table is materialized before it is flagged: as a CTE read twice, DuckDB
        # 2.0 took 60 s instead of 1 s for 1.5 million GPU values
        f"CREATE TEMP TABLE gv AS {GPUS_SQL}",
        f"CREATE TEMP TABLE gf AS {_flag_sql('SELECT * FROM gv', rule)}",
        "DROP TABLE gv",
        f"CREATE TEMP TABLE hv AS {HOSTS_SQL}",
        f"CREATE TEMP TABLE hf AS {_flag_sql('SELECT * FROM hv', rule)}",
        "DROP TABLE hv",
        # the flagged tables with names, for the few rows that are shown or exported
        "CREATE TEMP VIEW gfn AS SELECT gid, gpu, host, device_index, runs, value, fleet_median, mad, robust_z, "
        "pct_below_median, outlier FROM gf JOIN gpu_names USING (gpu_id) JOIN host_names USING (host_id)",
        "CREATE TEMP VIEW hfn AS SELECT gid, host, gpus, value, fleet_median, mad, robust_z, pct_below_median, "
        "outlier FROM hf JOIN host_names USING (host_id)",
    ]


# per case key + device model: the statistics over every measurement (count, median, MAD, ...);
# its GPUs and hosts are counted from gf and hf
GROUPS_SQL = f"""
CREATE TEMP TABLE groups AS
WITH med AS (SELECT gid, median(rate) AS median FROM ok GROUP BY gid)
SELECT gid, min(key) AS key, min(device_name) AS device_name, min(rate_unit) AS rate_unit,
       (min(key) <> max(key) OR min(device_name) <> max(device_name) OR min(rate_unit) <> max(rate_unit)) AS collided,
       count(*) AS count, any_value(med.median) AS median, median(abs(rate - med.median)) AS mad,
       min(rate) AS min, max(rate) AS max, min(row_in_file) AS first_row
FROM ok JOIN med USING (gid)
GROUP BY gid
"""

SUMMARY_SQL = f"""
SELECT {GROUP}, count, gpus, hosts, median, mad, min, max
FROM groups
JOIN (SELECT gid, count(*) AS gpus FROM gf GROUP BY gid) USING (gid)
JOIN (SELECT gid, count(*) AS hosts FROM hf GROUP BY gid) USING (gid)
ORDER BY first_row, key, device_name
"""

# a GPU's value for a case: the median over its runs (its host: the first by name)
GPUS_SQL = """
SELECT gid, gpu_id, min(host_id) AS host_id, min(device_index) AS device_index, count(*) AS runs,
       median(rate) AS value
FROM ok JOIN gpu_names USING (gpu) JOIN host_names USING (host) GROUP BY gid, gpu_id
"""

# a host's value for a case: the median over its GPUs
HOSTS_SQL = "SELECT gid, host_id, count(*) AS gpus, median(value) AS value FROM gf GROUP BY gid, host_id"


def _flag_sql(values_sql: str, rule: fleet.OutlierRule) -> str:
    """fleet_median, mad, robust_z, pct_below_median and outlier for a value table:
    `results.fleet._flag` in SQL (its `direction` is added where outliers are listed)."""
    if rule.method == "robust-z":
        outlier = f"abs(coalesce(robust_z, 0.0)) >= {float(rule.threshold)!r}"
    else:
        outlier = (f"coalesce(pct_below_median >= {float(rule.threshold)!r}, FALSE) "
                   f"AND size >= {fleet.MIN_GROUP['pct-below']}")
    return f"""
WITH v AS ({values_sql}),
med AS (SELECT gid, median(value) AS fleet_median, count(*) AS size FROM v GROUP BY gid),
dev AS (SELECT v.*, med.fleet_median, med.size, v.value - med.fleet_median AS deviation
        FROM v JOIN med USING (gid)),
spread AS (SELECT gid, median(abs(deviation)) AS mad, avg(abs(deviation)) AS mean_ad FROM dev GROUP BY gid),
scaled AS (
  SELECT dev.*, spread.mad, greatest(
           CASE WHEN spread.mad > 0 THEN spread.mad / {fleet.MAD_TO_SIGMA!r}
                ELSE spread.mean_ad * {fleet.MEANAD_TO_SIGMA!r} END,
           abs(dev.fleet_median) * {fleet.MIN_RELATIVE_SPREAD!r}) AS scale
  FROM dev JOIN spread USING (gid)),
scored AS (
  SELECT * EXCLUDE (scale),
         CASE WHEN size >= {fleet.MIN_GROUP['robust-z']} THEN (
           CASE WHEN scale > 0 THEN deviation / scale ELSE 0.0 END) END AS robust_z,
         (fleet_median - value) / fleet_median * 100.0 AS pct_below_median
  FROM scaled)
SELECT * EXCLUDE (size, deviation), {outlier} AS outlier FROM scored
"""


def _per_unit_sql(table: str, unit: list[str]) -> str:
    """One row per flagged GPU or host: its worst case, cases flagged and cases measured
    (`results.fleet._per_unit`)."""
    cols = ", ".join(unit)
    same = " AND ".join(f"w.{c} IS NOT DISTINCT FROM c.{c}" for c in unit)
    return f"""
WITH flagged AS (SELECT {GROUP}, t.* FROM (SELECT * FROM {table} WHERE outlier) AS t JOIN groups USING (gid)),
w AS (SELECT *, CASE WHEN value < fleet_median THEN 'slow' WHEN value > fleet_median THEN 'fast' ELSE '' END AS direction,
             row_number() OVER (PARTITION BY {cols} ORDER BY pct_below_median DESC, key) AS pick,
             count(*) OVER (PARTITION BY {cols}) AS flagged_cases
      FROM flagged),
c AS (SELECT {cols}, count(*) AS cases
      FROM (SELECT {GROUP}, t.* FROM (SELECT * FROM {table} WHERE host IN (SELECT host FROM flagged)) AS t
            JOIN groups USING (gid))
      GROUP BY {cols})
SELECT w.* EXCLUDE (pick, gid), c.cases FROM w JOIN c ON {same}
WHERE pick = 1
ORDER BY pct_below_median DESC, host
"""


SLOWEST_SQL = f"""
WITH per_gpu AS (
  SELECT host_id, gpu_id, min(device_index) AS device_index, min(device_name) AS device_name,
         median(value / fleet_median) AS relative_speed,
         arg_min(gid, value / fleet_median) AS worst_gid, min(value / fleet_median) AS worst_ratio
  FROM gf JOIN groups USING (gid) GROUP BY host_id, gpu_id),
ranked AS (
  SELECT *, count(*) OVER (PARTITION BY host_id) AS gpus_on_host,
         row_number() OVER (PARTITION BY host_id ORDER BY relative_speed, gpu_id) AS pick
  FROM per_gpu)
SELECT host, gpu, device_index, ranked.device_name, gpus_on_host, relative_speed,
       groups.key AS worst_key, worst_ratio
FROM ranked JOIN groups ON groups.gid = ranked.worst_gid
     JOIN host_names USING (host_id) JOIN gpu_names USING (gpu_id)
WHERE pick = 1
ORDER BY relative_speed, host_id
"""

SLOWEST_ROWS_SQL = "SELECT count(DISTINCT host_id) FROM gf JOIN groups USING (gid)"  # SLOWEST_SQL's rows

EXPORT_SQL = f"""
SELECT {", ".join("m." + c for c in COLUMNS)}, g.fleet_median, g.robust_z, g.pct_below_median,
       coalesce(g.outlier, FALSE) AS outlier, m.rate / g.fleet_median AS ratio_to_median
FROM m LEFT JOIN gpu_names AS n ON m.gpu = n.gpu
     LEFT JOIN gf AS g ON hash({", ".join("m." + c for c in fleet.GROUP)}) = g.gid AND n.gpu_id = g.gpu_id
ORDER BY m.source, m.row_in_file
"""
