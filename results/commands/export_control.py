"""`tppbench check`, `devices`, `rules`, `whatif`: parse -> call -> render -> exit code.

Exit codes: 0 ok; 1 a data or file error (one line, naming the file and key); 2 a bad option;
3 `check --fail-on controlled` found a controlled verdict."""

from __future__ import annotations

import argparse
import datetime
import json

from results.commands.argtypes import bounded, iso_date

EXIT_CONTROLLED = 3


_date = iso_date
_percent = bounded(float, at_least=0.0, below=1e6, expected="a percentage >= 0")
_count = bounded(int, at_least=1, expected="a count >= 1")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="compare a catalog part, spec file or result file with export-control thresholds",
        description="SUBJECT is a catalog id (see `tppbench devices`), a spec file (.toml) or a result "
                    "file (.json). Every regime is evaluated on every basis the subject has.")
    p.add_argument("subjects", nargs="+", metavar="SUBJECT")
    p.add_argument("--rules", metavar="ID,...",
                   help="regimes to apply (default: those in force on --as-of; 'all': every regime)")
    p.add_argument("--as-of", type=_date, metavar="YYYY-MM-DD", help="date for 'in force' (default: today)")
    p.add_argument("--near", type=_percent, default=10.0, metavar="PCT",
                   help="flag a threshold within PCT percent of the value (default 10)")
    p.add_argument("--json", action="store_true", help="print the JSON document")
    p.add_argument("--tf32-bits", type=int, choices=(32, 16), default=32, metavar="32|16",
                   help="TF32's bit length in TPP: 32 (default) or counted at the 16-bit rate; where the "
                        "other reading changes an outcome, a note says so either way")
    p.add_argument("--fail-on", choices=["controlled"], help="exit 3 when any verdict is controlled")
    p.set_defaults(handler=run_check_command)

    p = subparsers.add_parser("devices", help="every catalog part with TPP, PD, I/O, DRAM and its outcome per regime")
    p.add_argument("--json", action="store_true", help="print the check --json document, one subject per part")
    p.add_argument("--as-of", type=_date, metavar="YYYY-MM-DD",
                   help="only the regimes in force on this date (default: every regime with device thresholds)")
    p.set_defaults(handler=run_devices_command)

    p = subparsers.add_parser(
        "history", help="a part's outcome under every device-level regime at each date a regime changed",
        description="SUBJECT is a catalog id, a spec file (.toml) or a result file (.json, one history "
                    "per measured device). Dates come from the rule data; each outcome is `check`'s "
                    "evaluation on the subject's primary basis as of that date.")
    p.add_argument("subjects", nargs="+", metavar="SUBJECT")
    p.add_argument("--near", type=_percent, default=10.0, metavar="PCT",
                   help="flag a threshold within PCT percent of the value (default 10)")
    p.add_argument("--json", action="store_true", help="print {\"histories\": [...]}")
    p.set_defaults(handler=run_history_command)

    p = subparsers.add_parser("rules", help="every regime: id, title, citation, dates, status, thresholds")
    p.add_argument("--json", action="store_true", help="print {\"rules\": [...]}")
    p.set_defaults(handler=run_rules_command)

    p = subparsers.add_parser(
        "whatif", help="headroom to every threshold; cluster aggregates and training horizons for N devices")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("--count", type=_count, default=1, metavar="N", help="number of devices (default 1)")
    p.add_argument("--measured", metavar="RESULT", help="result file whose measured matmul rate to use")
    p.set_defaults(handler=run_whatif_command)


def _print_json(document: dict) -> None:
    print(json.dumps(document, indent=1, allow_nan=False))


def run_check_command(args: argparse.Namespace) -> int:
    from thresholds.check import document, run_check, select_rules
    from results.render.verdicts import render_check

    as_of = args.as_of or datetime.date.today()
    checked = run_check(args.subjects, args.rules, as_of, args.near, args.tf32_bits)
    if args.json:
        _print_json(document(checked))
    else:
        print(render_check(checked, select_rules(args.rules, as_of), as_of), end="")
    if args.fail_on == "controlled" and any(
        v.outcome == "controlled" for c in checked for v in c.verdicts
    ):
        return EXIT_CONTROLLED
    return 0


def run_devices_command(args: argparse.Namespace) -> int:
    from thresholds.check import check_subject, device_rules, document
    from thresholds.load import load_catalog
    from results.render.verdicts import render_devices
    from thresholds.subjects import catalog_subject

    rules = device_rules(args.as_of)
    day = args.as_of or datetime.date.today()
    checked = [check_subject(catalog_subject(p), rules, day, 10.0) for p in load_catalog()]
    if args.json:
        _print_json(document(checked))
    else:
        print(render_devices(checked, rules, day), end="")
    return 0


def run_history_command(args: argparse.Namespace) -> int:
    from thresholds.history import history, history_json
    from thresholds.load import load_rules
    from results.render.verdicts import render_history
    from thresholds.subjects import resolve

    rules = load_rules()
    histories = [history(s, rules, args.near) for text in args.subjects for s in resolve(text)]
    if args.json:
        _print_json({"histories": [history_json(h) for h in histories]})
    else:
        print(render_history(histories), end="")
    return 0


def run_rules_command(args: argparse.Namespace) -> int:
    from thresholds.load import load_rules
    from results.render.verdicts import render_rules
    from results.render.verdict_json import rule_json

    today = datetime.date.today()
    rules = load_rules()
    if args.json:
        _print_json({"rules": [rule_json(r, today) for r in rules]})
    else:
        print(render_rules(rules, today), end="")
    return 0


def run_whatif_command(args: argparse.Namespace) -> int:
    from thresholds.load import load_rules
    from results.render.verdicts import render_whatif
    from thresholds.subjects import resolve
    from thresholds.whatif import what_if

    rules = load_rules()
    today = datetime.date.today()
    subjects = resolve(args.subject)
    texts = []
    for subject in subjects:
        measured = _measured_rate(args.measured, subject) if args.measured else None
        texts.append(render_whatif(what_if(subject, rules, args.count, today, measured)))
    print("\n".join(texts), end="")
    return 0


def _measured_rate(path: str, subject) -> tuple[float, str, str]:
    """(op/s per device, precision, source) from a result file: the device matching the subject's
    catalog part if there is one, else the first device with an ok matmul record."""
    from results.files import store
    from results.errors import ResultFileError
    from thresholds.load import load_catalog
    from thresholds.match import match_part
    from thresholds.measured import measured_rates
    from thresholds.metrics import tpp_from_tops
    from thresholds.model import Interval

    result = store.load(path)
    catalog = load_catalog()
    candidates = []
    for device in result.devices:
        rates = measured_rates(result, device)
        tpp = tpp_from_tops({p: Interval.point(r / 1e12) for p, r in rates.items()})
        if tpp is None:
            continue
        part, _ = match_part(device, catalog)
        same = part is not None and part.id == subject.part_id
        candidates.append((not same, device.index, tpp, device))
    if not candidates:
        raise ResultFileError(path, "no ok matmul record: no measured rate")
    not_same, _, tpp, device = min(candidates, key=lambda c: (c[0], c[1]))
    source = f"{path}#{device.index} {device.name}"
    if not_same and subject.part_id:
        source += f" (not a {subject.part_id})"
    return tpp.ops_per_s.lo, tpp.ops_precision, source
