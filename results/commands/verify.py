"""`tppbench verify`: a lot of unit files against a declaration (the 2026 third-party test), and
`verify --check`: a signed manifest against the files it lists. Exit 0 every unit verified (or
every file matches), 3 any unit not verified, 1 bad input in one line naming the file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from results.errors import UsageError

EXIT_NOT_VERIFIED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="verify units' measured figures against a declaration "
                                             "(third-party lab test, docs/verification.md)")
    p.add_argument("units", nargs="*", metavar="UNIT_FILE", help="result files of `run --procedure lab`")
    p.add_argument("--declared", metavar="PART_ID|SPEC.toml", help="catalog part id or the exporter's spec file")
    p.add_argument("--procedure", default="lab", metavar="NAME|FILE",
                   help="the procedure the units were measured with (default: lab)")
    p.add_argument("--lot", default=None, metavar="NAME", help="lot name (default: the declaration's name)")
    p.add_argument("-o", "--output", default=None, metavar="LOT.html", help="write the HTML lot report")
    p.add_argument("--json", action="store_true", help="print the lot as JSON instead of text")
    p.add_argument("--csv", default=None, metavar="FILE", help="write one row per unit and item")
    p.add_argument("--manifest", default=None, metavar="M.json", help="write the evidence manifest (never over an old one)")
    p.add_argument("--sign", default=None, metavar="KEY", help="sign the manifest with ssh-keygen -Y sign (M.json.sig)")
    p.add_argument("--check", default=None, metavar="M.json", help="check a manifest: its signature, then every file's sha256")
    p.add_argument("--allowed-signers", default=None, metavar="FILE", help="OpenSSH allowed-signers file for --check")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.check is not None:
        if args.units or args.declared or args.manifest or args.sign:
            raise UsageError("--check takes only a manifest and --allowed-signers")
        return _check(Path(args.check), Path(args.allowed_signers) if args.allowed_signers else None)
    if not args.units:
        raise UsageError("give the unit files (result files of `tppbench run --procedure lab`)")
    if args.declared is None:
        raise UsageError("--declared PART_ID|SPEC.toml is required: what the exporter declared")
    if args.sign and not args.manifest:
        raise UsageError("--sign signs the manifest: give --manifest M.json too")
    from results.files.outputs import check_output
    from results.verification import manifest as evidence
    from results.verification.declared import load_declared
    from results.verification.lot import judge_lot
    from results.verification.procedure import load_procedure

    # every input and output checked before anything is written
    for out in (args.output, args.csv):
        if out is not None:
            check_output(out, args.units)
    manifest = Path(args.manifest) if args.manifest else None
    if manifest is not None:
        evidence.refuse_existing(manifest)
    if args.sign:
        evidence.check_signing_key(Path(args.sign))
    procedure = load_procedure(args.procedure)
    declared = load_declared(args.declared)
    lot = judge_lot(args.lot or declared.name, list(args.units), procedure, declared)
    _write_outputs(args, lot)
    if manifest is not None:
        evidence.write_manifest(lot, manifest)
        if args.sign:
            sig = evidence.sign(manifest, Path(args.sign))
            print(f"signed {manifest} -> {sig} (namespace {evidence.NAMESPACE})", file=sys.stderr)
        else:
            print(f"wrote {manifest}", file=sys.stderr)
    if not lot.verified:
        bad = [u.unit.serial for u in lot.units if u.determination != "verified"]
        print(f"tppbench: not verified: {len(bad)} of {len(lot.units)} unit(s): {', '.join(bad)}", file=sys.stderr)
        return EXIT_NOT_VERIFIED
    return 0


def _write_outputs(args: argparse.Namespace, lot) -> None:
    from results.files.outputs import write_atomically
    from results.render.lot import lot_csv, lot_document, render_lot_text

    if args.json:
        print(json.dumps(lot_document(lot), indent=1, allow_nan=False))
    else:
        sys.stdout.write(render_lot_text(lot))
    if args.csv:
        text = lot_csv(lot).encode()
        write_atomically(args.csv, lambda f: f.write(text))
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.output:
        from results.render.lot_html import render_lot_html

        page = render_lot_html(lot).encode()
        write_atomically(args.output, lambda f: f.write(page))
        print(f"wrote {args.output}", file=sys.stderr)


def _check(manifest: Path, allowed: Path | None) -> int:
    from results.verification.manifest import check_manifest

    result = check_manifest(manifest, allowed)
    who = f" by {', '.join(result.principals)}" if result.principals else ""
    print(f"{manifest}: signature {result.signature}{who}; {result.files - len(result.problems)} of "
          f"{result.files} file(s) match")
    if result.problems:
        for problem in result.problems:
            print(f"tppbench: error: {problem}", file=sys.stderr)
        return 1
    return 0
