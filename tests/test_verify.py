"""`tppbench verify` end to end on the CPU: one real `run --procedure lab`, then a lot of
SYNTHETIC copies of that one file with different serial numbers (labelled so in each copy's
`run.label`), judged against a spec derived from the run itself. Signing and checking use the
real `ssh-keygen` (openssh-client; .ci/run installs it)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from results.verification.procedure import load_procedure

ROOT = Path(__file__).resolve().parents[1]


def tppbench(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`verify` runs in this process (the CLI's own main(): no interpreter start per call, which
    made this module a minute slower); `run` in a child, as a user starts it."""
    if args[:1] == ("verify",) and cwd is None and env is None:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
        return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


# lab_run: tests/conftest.py (one real lab-procedure run per session, shared with the browser test)


def synthetic(doc: dict, folder: Path, serial: str, edit=None) -> Path:
    unit = copy.deepcopy(doc)
    unit["devices"][0]["identity"]["serial"] = serial
    unit["run"]["label"] = f"SYNTHETIC copy of one CPU lab run, serial set to {serial} (tests/test_verify.py)"
    if edit is not None:
        edit(unit)
    path = folder / f"unit-{serial}.json"
    path.write_text(json.dumps(unit))
    return path


def best_median(doc: dict, benchmark: str, precision: str | None = None, variants=()) -> float:
    rates = [m["stats"]["median"] for m in doc["measurements"]
             if m["benchmark"] == benchmark and m["status"] == "ok" and m.get("stats")
             and (precision is None or m["precision"] == precision) and (not variants or m["variant"] in variants)]
    return max(rates)


def spec_for(doc: dict, folder: Path, factor: float = 2.0, name: str = "CPU test part (declared from the run)") -> Path:
    """A spec declaring `factor` x what the run measured: the copies stay consistent with it."""
    lines = [f'name = "{name}"',
             f"memory_bandwidth_gbs = {best_median(doc, 'memory', variants=('read', 'write', 'copy')) / 1e9 * factor!r}",
             "[dense_tops]"]
    for p in ("fp64", "fp32", "fp16", "bf16", "fp8", "int8"):
        lines.append(f"{p} = {best_median(doc, 'matmul', p) / 1e12 * factor!r}")
    path = folder / f"spec-{factor:g}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _faster(precision: str, factor: float):
    def edit(unit: dict) -> None:
        for m in unit["measurements"]:
            if m["benchmark"] == "matmul" and m["precision"] == precision and m["status"] == "ok":
                m["times_s"] = [t / factor for t in m["times_s"]]
                for k in ("median", "mean", "min", "max", "p10", "p90"):
                    m["stats"][k] *= factor
                m["rate"] *= factor
    return edit


# --------------------------------------------------------------------------- the run itself


def test_the_procedure_run_records_procedure_identity_and_every_item(lab_run):
    proc = load_procedure("lab")
    assert lab_run["run"]["procedure"] == proc.record() and lab_run["run"]["mode"] == "lab"
    ident = lab_run["devices"][0]["identity"]
    assert {"serial", "machine_id", "source"} <= set(ident)
    keys = {m["key"] for m in lab_run["measurements"]}
    assert {"memory/read/bytes=268435456", "memory/write/bytes=268435456", "memory/copy/bytes=268435456"} <= keys
    assert any(k.startswith("matmul/bf16/m=512") for k in keys)  # the sweep: several shapes per precision
    cap = next(m for m in lab_run["measurements"] if m["benchmark"] == "capacity")
    assert cap["status"] == "ok" and cap["extra"]["verified_bytes"] == 256 << 20 and cap["extra"]["bounded"]
    assert not any(m["benchmark"] == "memory" and m["variant"] == "triad" for m in lab_run["measurements"])


def test_procedure_refuses_the_options_it_sets(tmp_path):
    cp = tppbench("run", "--device", "cpu", "--procedure", "lab", "--mode", "smoke", "--out", str(tmp_path))
    assert cp.returncode == 2 and "drop --mode" in cp.stderr and "Traceback" not in cp.stderr
    cp = tppbench("run", "--device", "cpu", "--procedure", "no-such", "--out", str(tmp_path))
    assert cp.returncode == 1 and "no such procedure" in cp.stderr and "Traceback" not in cp.stderr


# --------------------------------------------------------------------------- a lot


@pytest.fixture()
def lot(lab_run, tmp_path):
    units = [synthetic(lab_run, tmp_path, f"SYN-{i:04d}") for i in range(1, 5)]
    return tmp_path, units, spec_for(lab_run, tmp_path)


def test_a_lot_of_consistent_units_is_verified(lot):
    folder, units, spec = lot
    cp = tppbench("verify", *map(str, units), "--declared", str(spec), "--lot", "LOT-A", "--json",
                  "--csv", str(folder / "lot.csv"), "-o", str(folder / "lot.html"))
    assert cp.returncode == 0, cp.stdout[-3000:] + cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["verified"] and doc["counts"] == {"verified": 4}
    assert [u["serial"] for u in doc["units"]] == ["SYN-0001", "SYN-0002", "SYN-0003", "SYN-0004"]
    items = {i["item"]: i for i in doc["units"][0]["items"]}
    assert items["matmul/bf16"]["determination"] == "consistent" and items["matmul/bf16"]["upper_bound"] >= items["matmul/bf16"]["measured"]
    assert items["tpp"]["determination"] == "consistent"
    assert items["interconnect"]["determination"] == "not declared"
    assert items["capacity"]["determination"] == "not declared" and "bounded" in items["capacity"]["reason"]
    assert doc["outliers"] == []  # copies: no spread at all
    rows = (folder / "lot.csv").read_text().splitlines()
    assert rows[0].startswith("lot,serial,file,unit_determination,item") and len(rows) == 1 + 4 * len(items)
    assert "<table id=\"lot-table\">" in (folder / "lot.html").read_text()


def test_an_unlocked_unit_exceeds_the_declaration_and_the_lot_exits_3(lab_run, lot):
    folder, units, spec = lot
    fast = synthetic(lab_run, folder, "SYN-FAST", _faster("bf16", 4.0))
    cp = tppbench("verify", *map(str, units), str(fast), "--declared", str(spec))
    assert cp.returncode == 3, cp.stderr
    assert "not verified: 1 of 5 unit(s): SYN-FAST" in cp.stderr
    line = next(x for x in cp.stdout.splitlines() if x.startswith("SYN-FAST"))
    assert "exceeds declaration" in line and "matmul/bf16" in line


def test_a_slow_unit_is_below_expected(lab_run, lot):
    folder, units, spec = lot
    slow = synthetic(lab_run, folder, "SYN-SLOW", _faster("fp32", 0.25))
    cp = tppbench("verify", str(units[0]), str(slow), "--declared", str(spec), "--json")
    doc = json.loads(cp.stdout)
    assert cp.returncode == 3
    slow_doc = next(u for u in doc["units"] if u["serial"] == "SYN-SLOW")
    assert slow_doc["determination"] == "below expected" and "matmul/fp32" in slow_doc["decided_by"]


def test_duplicate_serials_are_their_own_determination(lab_run, lot):
    folder, units, spec = lot
    twin = synthetic(lab_run, folder, "SYN-0001-twin", lambda u: u["devices"][0]["identity"].update(serial="SYN-0001"))
    cp = tppbench("verify", *map(str, units), str(twin), "--declared", str(spec), "--json")
    assert cp.returncode == 3
    doc = json.loads(cp.stdout)
    assert doc["counts"] == {"duplicate serial": 2, "verified": 3}


@pytest.mark.parametrize("edit, words", [
    (lambda u: u["run"]["procedure"].update(sha256="0" * 64, version=2), "a lot is judged under one procedure file"),
    (lambda u: u["devices"][0].update(name="Some Other CPU"), "mixed models in one lot"),
    (lambda u: u["run"].update(procedure={}), "not measured with a procedure"),
])
def test_lots_that_cannot_be_judged_as_one_are_refused_in_one_line(lab_run, lot, edit, words):
    folder, units, spec = lot
    odd = synthetic(lab_run, folder, "SYN-ODD", edit)
    cp = tppbench("verify", *map(str, units), str(odd), "--declared", str(spec), "-o", str(folder / "x.html"))
    assert cp.returncode == 1 and words in cp.stderr and len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert not (folder / "x.html").exists()  # nothing written


def test_declarations_missing_or_nonsense_figures(lab_run, lot):
    folder, units, spec = lot
    sparse = folder / "sparse.toml"
    sparse.write_text('name = "only fp32"\n[dense_tops]\nfp32 = 1000.0\n')
    cp = tppbench("verify", str(units[0]), "--declared", str(sparse), "--json")
    doc = json.loads(cp.stdout)
    items = {i["item"]: i["determination"] for i in doc["units"][0]["items"]}
    assert items["memory_bandwidth"] == "not declared" and items["matmul/bf16"] == "not declared"
    bad = folder / "bad.toml"
    bad.write_text('name = "x"\nmemory_bandwidth_gbs = -5.0\n')
    cp = tppbench("verify", str(units[0]), "--declared", str(bad))
    assert cp.returncode == 1 and str(bad) in cp.stderr and "memory_bandwidth_gbs" in cp.stderr
    cp = tppbench("verify", str(units[0]), "--declared", "no-such-part")
    assert cp.returncode == 1 and "not a catalog part id or a spec file" in cp.stderr


def test_a_catalog_declaration_judges_a_cpu_unit_below_expected_and_states_its_standing(lot):
    folder, units, _ = lot
    cp = tppbench("verify", str(units[0]), "--declared", "h200", "--json")
    assert cp.returncode == 3
    unit = json.loads(cp.stdout)["units"][0]
    items = {i["item"]: i for i in unit["items"]}
    assert items["matmul/bf16"]["determination"] == "below expected"
    assert "published 794.5" not in items["matmul/bf16"]["floor_source"]  # h200's bf16 is not published
    assert "0.8 x published 1453.4 TFLOP/s" in items["matmul/fp8"]["floor_source"]  # mamf-finder's H200 fp8
    assert items["capacity"]["determination"] == "not measured"  # 141 GB declared; the CPU check is bounded
    standing = {s["rule"]: s for s in unit["standing"]}
    assert standing["us-2026-01"]["declared"] == "inside" and standing["us-2026-232"]["declared"].startswith("inside")


# --------------------------------------------------------------------------- evidence


def _keypair(folder: Path, name: str = "lab@example.org") -> tuple[Path, Path]:
    key = folder / "lab_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    allowed = folder / "allowed_signers"
    allowed.write_text(f'{name} namespaces="tppbench-lot" {(folder / "lab_key.pub").read_text().strip()}\n')
    return key, allowed


def test_signed_manifest_checks_and_names_a_tampered_unit(lot):
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen not found: install openssh-client (.ci/run does)")
    folder, units, spec = lot
    key, allowed = _keypair(folder)
    manifest = folder / "lot-manifest.json"
    cp = tppbench("verify", *map(str, units), "--declared", str(spec), "--manifest", str(manifest), "--sign", str(key))
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(manifest.read_text())
    assert [f["role"] for f in doc["files"]] == ["procedure", "declared", "unit", "unit", "unit", "unit"]
    assert {d["determination"] for d in doc["determinations"]} == {"verified"}
    assert Path(f"{manifest}.sig").read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    cp = tppbench("verify", "--check", str(manifest), "--allowed-signers", str(allowed))
    assert cp.returncode == 0 and "signature good by lab@example.org; 6 of 6 file(s) match" in cp.stdout, cp.stderr
    # the same check with stock OpenSSH, no tppbench involved
    with open(manifest, "rb") as f:
        stock = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "lab@example.org",
                                "-n", "tppbench-lot", "-s", f"{manifest}.sig"], stdin=f, capture_output=True)
    assert stock.returncode == 0, stock.stderr
    # a unit edited after signing is named; a deleted one is named as missing
    data = json.loads(units[1].read_text())
    data["measurements"][0]["rate"] = (data["measurements"][0]["rate"] or 1.0) * 2
    units[1].write_text(json.dumps(data))
    units[2].unlink()
    cp = tppbench("verify", "--check", str(manifest), "--allowed-signers", str(allowed))
    assert cp.returncode == 1
    assert f"{units[1].name}: changed" in cp.stderr and f"{units[2].name}: missing" in cp.stderr
    assert "Traceback" not in cp.stderr
    # an edited manifest no longer matches its signature
    manifest.write_text(manifest.read_text().replace('"verified": true', '"verified": false'))
    cp = tppbench("verify", "--check", str(manifest), "--allowed-signers", str(allowed))
    assert cp.returncode == 1 and "BAD signature" in cp.stderr


def test_manifest_and_key_problems_are_one_line_and_write_nothing(lot, tmp_path):
    folder, units, spec = lot
    manifest = folder / "m.json"
    manifest.write_text("{}")  # an old manifest is never written over
    cp = tppbench("verify", str(units[0]), "--declared", str(spec), "--manifest", str(manifest))
    assert cp.returncode == 2 and "never written over" in cp.stderr and manifest.read_text() == "{}"
    junk_key = folder / "junk_key"
    junk_key.write_text("not a key\n")
    fresh = folder / "fresh.json"
    cp = tppbench("verify", str(units[0]), "--declared", str(spec), "--manifest", str(fresh), "--sign", str(junk_key))
    assert cp.returncode == 1 and "not an SSH key" in cp.stderr and not fresh.exists()
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    (tmp_path / "empty-bin").mkdir()
    cp = subprocess.run([sys.executable, "-m", "bench", "verify", str(units[0]), "--declared", str(spec),
                         "--manifest", str(fresh), "--sign", str(junk_key)], capture_output=True, text=True, env=env)
    assert cp.returncode == 1 and "ssh-keygen not found" in cp.stderr and not fresh.exists()
    cp = tppbench("verify", "--check", str(folder / "absent.json"))
    assert cp.returncode == 1 and "no such manifest" in cp.stderr
