"""Rule, catalog, derivation and spec files: the shipped data validates; malformed files give one-line
errors naming the file and the key (exit 1, no traceback)."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from thresholds.errors import DataFileError
from thresholds.load import (
    PACKAGE_DIR, load_catalog, load_derivation, load_rule_file, load_rules, load_spec,
)
from thresholds.model import TAGS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "thresholds"
REQUIRED_IDS = {"us-2022-10", "us-2023-10", "us-2024-12", "us-2026-01", "us-2025-01-diffusion",
                "us-eo14110", "us-2024-09-nprm", "eu-ai-act-51"}


# --------------------------------------------------------------------------- shipped data


def test_every_required_regime_is_shipped_with_citation_and_dates():
    rules = {r.id: r for r in load_rules(PACKAGE_DIR / "rules")}
    assert REQUIRED_IDS <= set(rules)
    for r in rules.values():
        assert r.citation and r.citation_tags and r.title
        assert r.effective_from or r.status == "proposed"


@pytest.mark.parametrize("rule_id, status, start, end", [
    ("us-2022-10", "superseded", "2022-10-07", "2023-11-17"),
    ("us-2023-10", "in force", "2023-11-17", None),
    ("us-2024-12", "in force", "2024-12-02", None),
    ("us-2026-01", "in force", "2026-01-15", None),
    ("us-2025-01-diffusion", "not enforced", "2025-01-13", "2025-05-13"),
    ("us-eo14110", "revoked", "2023-10-30", "2025-01-20"),
    ("us-2024-09-nprm", "proposed", None, None),
    ("eu-ai-act-51", "in force", "2025-08-02", None),
])
def test_regime_dates_and_status(rule_id, status, start, end):
    r = {r.id: r for r in load_rules(PACKAGE_DIR / "rules")}[rule_id]
    assert r.status == status
    assert (r.effective_from.isoformat() if r.effective_from else None) == start
    assert (r.status_date.isoformat() if r.status_date else None) == end


@pytest.mark.parametrize("rule_id, day, in_force", [
    ("us-2022-10", "2022-10-06", False), ("us-2022-10", "2022-10-07", True),
    ("us-2022-10", "2023-11-16", True), ("us-2022-10", "2023-11-17", False),
    ("us-2023-10", "2023-11-16", False), ("us-2023-10", "2023-11-17", True), ("us-2023-10", "2030-01-01", True),
    ("us-2025-01-diffusion", "2025-05-12", True), ("us-2025-01-diffusion", "2025-05-13", False),
    ("us-eo14110", "2025-01-19", True), ("us-eo14110", "2025-01-20", False),
    ("us-2024-09-nprm", "2025-01-01", False),
])
def test_in_force_on(rule_id, day, in_force):
    r = {r.id: r for r in load_rules(PACKAGE_DIR / "rules")}[rule_id]
    assert r.in_force_on(datetime.date.fromisoformat(day)) is in_force


def test_every_catalog_figure_carries_tags_and_a_source():
    parts = load_catalog(PACKAGE_DIR / "devices")
    assert len(parts) >= 22
    for part in parts:
        figures = [part.datacenter, part.die_area_mm2, part.memory_bandwidth_gbs, part.sm_count,
                   part.boost_clock_mhz, part.memory_capacity_gb, *part.dense_tops.values(), *part.io_gbs.values()]
        for fig in (f for f in figures if f is not None):
            assert fig.tags and all(t in TAGS for t in fig.tags), part.id
            assert fig.source.strip(), part.id
        assert part.datacenter is not None, f"{part.id}: datacenter flag missing"
        if part.pci_ids:
            assert part.pci_ids_source and "pci.ids" in part.pci_ids_source


def test_unpublished_specs_are_listed_as_gaps():
    parts = {p.id: p for p in load_catalog(PACKAGE_DIR / "devices")}
    for part in parts.values():
        missing = []
        if part.die_area_mm2 is None:
            missing.append("die area")
        if not part.dense_tops:
            missing.append("dense rates")
        if not part.io_gbs:
            missing.append("link")
        if part.memory_bandwidth_gbs is None:
            missing.append("memory bandwidth")
        for what in missing:
            assert any(what in g.lower() or what.split()[0] in g.lower() for g in part.gaps), (part.id, what)
    assert not parts["mi308x"].dense_tops and len(parts["mi308x"].gaps) >= 4


def test_recalled_figures_stay_marked_unverified():
    parts = {p.id: p for p in load_catalog(PACKAGE_DIR / "devices")}
    # INT4 was recalled from the Ampere whitepaper [R]; the survey found it listed with the datasheet
    # figures (regulations-2026.md §2.5), so it moved to [S] and says where it came from
    assert not parts["a100-sxm"].dense_tops["int4"].unverified
    assert "upb-pc2" in parts["a100-sxm"].dense_tops["int4"].source
    assert parts["h800-pcie"].dense_tops["fp64"].unverified  # reference: FP64 [R]
    assert parts["mi300x"].die_area_mm2.unverified  # 1,017-2,400 mm2, unpublished
    assert not parts["h100-sxm"].dense_tops["fp8"].unverified


def _figures(part):
    named = {"datacenter": part.datacenter, "die_area_mm2": part.die_area_mm2,
             "memory_bandwidth_gbs": part.memory_bandwidth_gbs, "sm_count": part.sm_count,
             "boost_clock_mhz": part.boost_clock_mhz, "memory_capacity_gb": part.memory_capacity_gb}
    named.update({f"dense_tops.{k}": f for k, f in part.dense_tops.items()})
    named.update({f"io_gbs.{k}": f for k, f in part.io_gbs.items()})
    return {k: f for k, f in named.items() if f is not None}


def test_every_memory_capacity_stands_in_its_own_source():
    """The capacity is the number its source prints before "GB" (or "GiB", converted at 2^30 bytes
    and tagged I): the capacity check of `verify` compares units against it."""
    import re

    seen = 0
    for part in load_catalog(PACKAGE_DIR / "devices"):
        fig = part.memory_capacity_gb
        if fig is None:
            continue
        seen += 1
        printed = [float(n) for n in re.findall(r"(\d+(?:\.\d+)?)(?=(?:(?:-| / )\d+)? ?(?:GB|GiB)\b(?!/s))", fig.source)]
        binary = [float(n) for n in re.findall(r"(\d+) GiB", fig.source)]
        for bound in {fig.value.lo, fig.value.hi}:
            ok = bound in printed or any(abs(b * 1.073741824 - bound) < 0.01 for b in binary)
            assert ok, (part.id, bound, fig.source)
        if binary:
            assert "I" in fig.tags, part.id
    assert seen >= 50


def test_figures_the_reference_marks_recalled_say_unverified_in_their_source():
    """A figure tagged [R] alone or with [I] (not a vendor figure [V]/[R] seen only second-hand)
    says "unverified" in its own source text, so the data reads right without the tool."""
    missing = []
    for part in load_catalog(PACKAGE_DIR / "devices"):
        for key, fig in _figures(part).items():
            if "R" in fig.tags and "V" not in fig.tags and "unverified" not in fig.source.lower():
                missing.append(f"{part.id}.{key}")
    assert missing == []


EXCERPTS = {"pci.ids 2023.04.10": DATA / "pci.ids.excerpt",  # Debian pci.ids 0.0~2023.04.11-1
            "pci.ids 2026.06.16": DATA / "pci.ids.2026.excerpt"}  # PyPI pypci-ng 0.3.11


def test_pci_ids_agree_with_pci_ids_database():
    """Every catalog PCI id is named as in the excerpt of the pci.ids version its source cites (Debian's
    2023 package or the 2026 copy in PyPI's pypci-ng); when the 2023 database is installed
    (/usr/share/misc/pci.ids), the 2023 ids are checked against it as well."""
    tables = {v: _pci_table(p.read_text(encoding="utf-8", errors="replace")) for v, p in EXCERPTS.items()}
    if Path("/usr/share/misc/pci.ids").exists():
        full = _pci_table(Path("/usr/share/misc/pci.ids").read_text(encoding="utf-8", errors="replace"))
        tables["pci.ids 2023.04.10"] = {**tables["pci.ids 2023.04.10"], **full}
    checked = 0
    for part in load_catalog(PACKAGE_DIR / "devices"):
        versions = [v for v in tables if part.pci_ids_source and v in part.pci_ids_source]
        assert not part.pci_ids or len(versions) == 1, f"{part.id}: source names no single pci.ids version"
        for pid in part.pci_ids:
            table = tables[versions[0]]
            assert pid in table, f"{part.id}: {pid} not in {versions[0]}"
            assert table[pid] in part.pci_ids_source, f"{part.id}: {pid} is {table[pid]!r} in {versions[0]}"
            checked += 1
    assert checked >= 45


def _pci_table(text: str) -> dict[str, str]:
    table, vendor = {}, None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith("\t"):
            vendor = line[:4].lower()
        elif not line.startswith("\t\t") and vendor:
            table[f"{vendor}:{line[1:5].lower()}"] = line[5:].strip()
    return table


def test_derivation_tables_load():
    tables = load_derivation(PACKAGE_DIR / "devices")
    assert {"7.0", "7.5", "8.0", "8.6", "8.9", "9.0", "10.0", "12.0"} <= set(tables.architectures)
    assert tables.nvlink_link_gbs.rates["4"] == 50.0
    assert tables.pcie_lane_gbs.rates["5"] * 16 == 128.0


def test_derivation_ops_per_clock_of_zero_is_an_error(tmp_path):
    folder = tmp_path / "devices"
    folder.mkdir()
    text = (PACKAGE_DIR / "devices" / "derivation.toml").read_text().replace("fp64 = 128", "fp64 = 0", 1)
    (folder / "derivation.toml").write_text(text)
    with pytest.raises(DataFileError, match=r"dense_ops_per_clock_per_sm\.fp64: must be > 0"):
        load_derivation(folder)


# --------------------------------------------------------------------------- malformed files


def _rule_dir(tmp_path: Path, text: str, name: str = "us-bad.toml") -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


GOOD_RULE = """
id = "us-bad"
title = "t"
citation = "c"
citation_tag = "P"
effective_from = 2020-01-01
status = "in force"
[[paragraph]]
label = "p"
scope = "device"
effect = "controlled"
all = [ { metric = "tpp", comparator = ">=", value = 4800.0, unit = "TPP" } ]
"""


@pytest.mark.parametrize("old, new, key, words", [
    ('metric = "tpp"', 'metric = "tppp"', "paragraph[0].all[0].metric", "unknown value 'tppp'"),
    ('comparator = ">="', 'comparator = "=>"', "paragraph[0].all[0].comparator", "unknown value '=>'"),
    ('unit = "TPP"', 'unit = "GB/s"', "paragraph[0].all[0].unit", "unknown unit 'GB/s'"),
    ('unit = "TPP" }', 'unit = "TPP", colour = 1 }', "paragraph[0].all[0].colour", "unknown key 'colour'"),
    ('title = "t"', 'title = "t"\nvintage = 1', "vintage", "unknown key 'vintage'"),
    ('scope = "device"', 'scope = "planet"', "paragraph[0].scope", "unknown value 'planet'"),
    ('status = "in force"', 'status = "maybe"', "status", "unknown value 'maybe'"),
    ('citation_tag = "P"', 'citation_tag = "Q"', "citation_tag", "unknown confidence tag 'Q'"),
    ('effective_from = 2020-01-01', 'effective_from = "2020-01-01"', "effective_from", "TOML date"),
    ('value = 4800.0', 'value = "4800"', "paragraph[0].all[0].value", "must be a number"),
    ('id = "us-bad"', 'id = "other"', "id", "must match the file name"),
])
def test_malformed_rule_names_file_and_key(tmp_path, old, new, key, words):
    assert old in GOOD_RULE
    folder = _rule_dir(tmp_path, GOOD_RULE.replace(old, new))
    with pytest.raises(DataFileError) as info:
        load_rule_file(folder / "us-bad.toml")
    message = str(info.value)
    assert message.startswith(str(folder / "us-bad.toml") + ": ")
    assert f": {key}: " in message and words in message
    assert "\n" not in message


def test_good_rule_loads(tmp_path):
    rule = load_rule_file(_rule_dir(tmp_path, GOOD_RULE) / "us-bad.toml")
    assert rule.paragraphs[0].clauses[0].value == 4800.0


@pytest.mark.parametrize("text, words", [
    ('all = [ { metric = "datacenter", comparator = ">=", value = 1.0, unit = "flag" } ]', "is a flag"),
    ('all = [ { metric = "tpp", comparator = "is", value = true } ]', "is for flag metrics"),
    ('all = [ { metric = "tpp", comparator = ">=", value = 1.0 } ]', "missing key 'unit'"),
    ('any = []\nall = []', "exactly one of 'all' or 'any'"),
])
def test_malformed_clauses(tmp_path, text, words):
    body = GOOD_RULE.replace('all = [ { metric = "tpp", comparator = ">=", value = 4800.0, unit = "TPP" } ]', text)
    with pytest.raises(DataFileError, match=words):
        load_rule_file(_rule_dir(tmp_path, body) / "us-bad.toml")


def test_invalid_toml_is_one_line(tmp_path):
    with pytest.raises(DataFileError) as info:
        load_rule_file(_rule_dir(tmp_path, "id = [unclosed") / "us-bad.toml")
    assert "invalid TOML" in str(info.value) and "\n" not in str(info.value)


GOOD_PART = """
[[part]]
id = "x1"
name = "X1"
vendor = "V"
datacenter = { value = true, tag = "I", source = "s" }
die_area_mm2 = { value = 100.0, tag = "V", source = "s" }
[part.dense_tops]
fp16 = { value = 100.0, tag = "V", source = "s" }
[part.io_gbs]
pcie = { value = 64.0, tag = "I", source = "s" }
"""


@pytest.mark.parametrize("old, new, key, words", [
    ('fp16 = {', 'fp12 = {', "part[0].dense_tops.fp12", "unknown precision 'fp12'"),
    ('fp16 = { value = 100.0, tag = "V", source = "s" }', 'fp16 = { value = 100.0, tag = "V" }',
     "part[0].dense_tops.fp16", "missing key 'source'"),
    ('fp16 = { value = 100.0, tag = "V", source = "s" }', 'fp16 = { value = 100.0, tag = "W", source = "s" }',
     "part[0].dense_tops.fp16.tag", "unknown confidence tag 'W'"),
    ('vendor = "V"', 'vendor = "V"\npci_ids = ["2330"]', "part[0].pci_ids", "vendor:device"),
    ('vendor = "V"', 'vendor = "V"\nprice = 3', "part[0].price", "unknown key 'price'"),
    ('die_area_mm2 = { value = 100.0,', 'die_area_mm2 = { value = -1.0,', "part[0].die_area_mm2.value", "must be >= 0"),
    # PD divides by the die area: 0 was a ZeroDivisionError traceback
    ('die_area_mm2 = { value = 100.0,', 'die_area_mm2 = { value = 0.0,', "part[0].die_area_mm2", "must be > 0"),
    ('die_area_mm2 = { value = 100.0,', 'die_area_mm2 = { min = 0.0, max = 100.0,', "part[0].die_area_mm2",
     "must be > 0"),
])
def test_malformed_catalog_names_file_and_key(tmp_path, old, new, key, words):
    assert old in GOOD_PART
    folder = tmp_path / "devices"
    folder.mkdir()
    (folder / "parts.toml").write_text(GOOD_PART.replace(old, new))
    with pytest.raises(DataFileError) as info:
        load_catalog(folder)
    message = str(info.value)
    assert message.startswith(str(folder / "parts.toml") + ": ")
    assert key in message and words in message and "\n" not in message


def test_duplicate_part_id_is_an_error(tmp_path):
    folder = tmp_path / "devices"
    folder.mkdir()
    (folder / "a.toml").write_text(GOOD_PART)
    (folder / "b.toml").write_text(GOOD_PART)
    with pytest.raises(DataFileError, match="duplicate part id 'x1'"):
        load_catalog(folder)


@pytest.mark.parametrize("text, key, words", [
    ('name = "n"\nwatts = 700', "watts", "unknown key 'watts'"),
    ('name = "n"\n[dense_tops]\nfp9 = 1.0', "dense_tops.fp9", "unknown precision 'fp9'"),
    ('name = "n"\n[dense_tops]\nfp16 = "fast"', "dense_tops.fp16", "must be a number"),
    ('name = "n"\ndie_area_mm2 = 0.0', "die_area_mm2", "must be > 0"),
    # 1e307 TOPS x 64 was an infinite TPP and a JSON ValueError traceback
    ('name = "n"\n[dense_tops]\nfp64 = 1e307', "dense_tops.fp64", "must be <= 1e+09"),
    ('name = "n"\n[io_gbs]\nnvlink = 1e300', "io_gbs.nvlink", "must be <= 1e+09"),
    ('name = "n"\ndatacenter = "yes"', "datacenter", "true or false"),
    ('datacenter = true', None, "missing key 'name'"),
])
def test_malformed_spec(tmp_path, text, key, words):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    with pytest.raises(DataFileError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ") and words in message and "\n" not in message
    if key:
        assert f": {key}: " in message


def test_example_spec_from_the_issue_loads():
    part = load_spec(DATA / "example-part.toml")
    assert set(part.dense_tops) == {"fp64", "fp32", "tf32", "fp16", "bf16", "int8", "int4"}  # zeros dropped
    assert part.datacenter.value is True and part.io_gbs["nvlink"].value.lo == 400.0


# --------------------------------------------------------------------------- through the CLI


def _cli(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tppbench: error: ")
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0]


def test_cli_malformed_rule_file(tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(PACKAGE_DIR / "rules", folder)
    (folder / "us-2023-10.toml").write_text(
        (PACKAGE_DIR / "rules" / "us-2023-10.toml").read_text().replace('metric = "performance_density"',
                                                                         'metric = "perf_density"', 1))
    for args in (["check", "h100-sxm"], ["devices"], ["rules"], ["whatif", "l4"]):
        proc = _cli(args, {"TPPBENCH_RULES_DIR": str(folder)})
        _one_line_error(proc, 1, "us-2023-10.toml", "paragraph[1].all[1].metric", "perf_density")


def test_cli_malformed_catalog_file(tmp_path):
    folder = tmp_path / "devices"
    shutil.copytree(PACKAGE_DIR / "devices", folder)
    path = folder / "01-nvidia.toml"
    path.write_text(path.read_text().replace('tf32 = { value = 156.0', 'tf33 = { value = 156.0', 1))
    proc = _cli(["devices"], {"TPPBENCH_DEVICES_DIR": str(folder)})
    _one_line_error(proc, 1, "01-nvidia.toml", "part[0].dense_tops.tf33", "unknown precision")


def test_cli_malformed_spec_file(tmp_path):
    path = tmp_path / "part.toml"
    path.write_text('name = "n"\n[dense_tops]\nfp16 = 1.0\nbf17 = 2.0\n')
    _one_line_error(_cli(["check", str(path)]), 1, str(path), "dense_tops.bf17")
    _one_line_error(_cli(["check", str(tmp_path / "absent.toml")]), 1, "absent.toml", "no such file")
