"""`tppbench history`: a part's outcome under every device-level regime at each date of the rule
data, table-driven for the parts whose story the regimes were written around (issue 10)."""

from __future__ import annotations

import datetime
import json

import pytest

from bench.cli import main
from thresholds.history import cell_word, history, rule_events, why
from thresholds.load import PACKAGE_DIR, load_catalog, load_rules
from thresholds.subjects import catalog_subject

RULES = load_rules(PACKAGE_DIR / "rules")
D2022, D2023, D2026 = datetime.date(2022, 10, 7), datetime.date(2023, 11, 17), datetime.date(2026, 1, 15)

# part: {date: (us-2022-10 cell, us-2023-10 cell, us-2026-01 cell)} and the reason words on that date
STORIES = {
    "a800-sxm": {
        D2022: (("not~", "-", "-", "-"), "I/O 464 < 600 GB/s", "TPP 4,992 vs >= 4,800, +4.0%"),
        D2023: (("-", "3A090.a.1~", "-", "-"), "TPP 4,992 >= 4,800 -> 3A090.a.1", "margin TPP +4.0%"),
        D2026: (("-", "3A090.a.1~", "inside", "outside"), "inside case-by-case review band", "DRAM bandwidth 2,039 < 6,500"),
    },
    "h800-sxm": {
        D2022: (("not", "-", "-", "-"), "I/O 528 < 600 GB/s", "margin I/O -12.0%"),
        D2023: (("-", "3A090.a.1", "-", "-"), "TPP 15,832 >= 4,800 -> 3A090.a.1", ""),
        D2026: (("-", "3A090.a.1", "inside", "outside~"), "TPP 15,832 < 21,000", "-24.6%"),
    },
    "h20": {
        D2022: (("not", "-", "-", "-"), "TPP 2,368 < 4,800", ""),
        D2023: (("-", "not~", "-", "-"), "3A090.b.1: TPP 2,368 < 2,400", "TPP 2,368 vs >= 2,400, -1.3%"),
        D2026: (("-", "not~", "inside", "outside"), "DRAM bandwidth 4,000 < 6,500 GB/s", ""),
    },
    "rtx-4090-d": {
        D2022: (("not~", "-", "-", "-"), "TPP 4,707.2 < 4,800", "-1.9%"),
        D2023: (("-", "not (Note 2)~", "-", "-"), "Note 2 to 3A090: not controlled", "margin TPP -1.9%"),
        D2026: (("-", "not (Note 2)~", "inside", "outside"), "TPP 4,707.2 < 21,000", ""),
    },
    "b200": {
        D2022: (("3A090.a", "-", "-", "-"), "TPP 36,000 >= 4,800 and I/O 1,928 >= 600 GB/s -> 3A090.a", ""),
        D2023: (("-", "3A090.a.1", "-", "-"), "TPP 36,000 >= 4,800 -> 3A090.a.1", ""),
        D2026: (("-", "3A090.a.1", "outside", "outside"), "TPP 36,000 >= 21,000", "outside the band"),
    },
    "h200": {  # the Section 232 boxes were drawn around it and the MI325X (regulations-2026.md R7)
        D2026: (("-", "3A090.a.1", "inside", "inside~"), "inside Section 232 box 1", "DRAM bandwidth 4,800 < 5,000"),
    },
    "mi325x": {
        D2026: (("-", "3A090.a.1", "inside~", "inside~"), "inside Section 232 box 2", "TPP 20,919.2 > 20,800"),
    },
}


def _history(part_id: str):
    part = next(p for p in load_catalog(PACKAGE_DIR / "devices") if p.id == part_id)
    return history(catalog_subject(part), RULES)


def test_dates_come_from_the_rule_data():
    dates = sorted({e.date for e in rule_events(RULES)})
    for day in ("2022-10-07", "2023-11-17", "2024-12-02", "2025-01-13", "2025-05-13", "2026-01-15"):
        assert datetime.date.fromisoformat(day) in dates
    assert datetime.date(2024, 9, 11) not in dates  # a proposal (the 2024 NPRM) never came into force
    kinds = {(e.rule_set, e.kind) for e in rule_events(RULES)}
    assert ("us-2022-10", "superseded") in kinds and ("us-2025-01-diffusion", "not enforced") in kinds


@pytest.mark.parametrize("part_id", sorted(STORIES))
def test_a_parts_story_through_time(part_id):
    h = _history(part_id)
    assert h.regimes == ("us-2022-10", "us-2023-10", "us-2026-01", "us-2026-232") and h.basis == "peak-declared"
    rows = {row.date: row for row in h.rows}
    for day, (cells, *words) in STORIES[part_id].items():
        row = rows[day]
        assert tuple(cell_word(row.verdict(r)) for r in h.regimes) == cells, day
        text = " ".join(why(row))
        for word in words:
            assert word in text, (day, word, text)
    # the first row is 2022-10-07 and outcomes only change on dates that name an event
    assert h.rows[0].date == D2022 and all(row.events for row in h.rows)
    assert "us-2026-232 in force" in " ".join(why(rows[D2026]))


def test_a800_text_and_json_tell_the_2022_2023_2026_story(capsys):
    assert main(["history", "a800-sxm"]) == 0
    out = capsys.readouterr().out
    assert "2022-10-07  not~" in out and "I/O 464 < 600 GB/s -> no paragraph met" in out
    assert "2023-11-17  -           3A090.a.1~" in out and "margin TPP +4.0%" in out
    assert "2026-01-15  -           3A090.a.1~  inside" in out
    assert "us-2022-10: no longer in force, its outcome lapses" in out
    assert main(["history", "a800-sxm", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (entry,) = doc["histories"]
    by_date = {row["date"]: row for row in entry["rows"]}
    assert by_date["2022-10-07"]["outcomes"]["us-2022-10"]["outcome"] == "not_controlled"
    assert by_date["2023-11-17"]["outcomes"]["us-2023-10"]["paragraph"] == "3A090.a.1"
    assert by_date["2023-11-17"]["outcomes"]["us-2022-10"] == {"in_force": False, "cell": "-"}
    assert by_date["2026-01-15"]["outcomes"]["us-2026-01"]["met"] is True
    assert by_date["2025-01-13"]["changes"] == [] and "us-2025-01-diffusion in force" in by_date["2025-01-13"]["why"][0]


def test_history_of_a_result_file_and_bad_subjects(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
    import synth
    from results.files import store

    path = store.save(synth.h100_run(3), tmp_path)  # synthetic H100 file, labelled as such
    assert main(["history", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"(result {path}#0)" in out and "2022-10-07  3A090.a" in out
    assert main(["history", "no-such-part"]) == 1
    assert "unknown subject 'no-such-part'" in capsys.readouterr().err
