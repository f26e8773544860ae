"""The command line of ``bench/run.py``: its options, and one run from start to results."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import harness
from harness.cases import CASES
from harness.interpreters import ensure_interpreter, ensure_theirs, import_path
from harness.layer import ours_path
from harness.report import table
from harness.session import Bench
from harness.settings import BENCH, DRIVERS, FULL, NOTES, QUICK, BenchError, Impl


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(harness.__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller data (< 2 min)")
    parser.add_argument("--cases", default="1,2,3,4,5,6,7", help="which cases, e.g. 1,2,6")
    parser.add_argument("--ours-only", action="store_true", help="do not run faas-supervisor")
    parser.add_argument(
        "--theirs-python",
        metavar="PATH",
        help="an interpreter with faas-supervisor 1.5.8 (default: bench/.venv-theirs, created)",
    )
    parser.add_argument(
        "--ours-path",
        metavar="PATHS",
        help="ours' PYTHONPATH, colon-separated (default: the working tree, then the layer "
        "built by layer/build.py into bench/.layer-ours)",
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH / "results.json", help="where the JSON goes"
    )
    parser.add_argument(
        "--site",
        action="store_true",
        help="start the implementations' interpreters with site processing (default: -S and "
        "PYTHONPATH, as a layer is found, without the .pth files of a development install)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and its logs")
    args = parser.parse_args(argv)
    if args.site and args.ours_path:
        parser.error("--ours-path and --site: give one (--site runs ours on .venv)")
    try:
        args.case_list = sorted({int(item) for item in args.cases.split(",") if item.strip()})
    except ValueError:
        parser.error(f"--cases: expected numbers 1 to 7, got {args.cases!r}")
    if not set(args.case_list) <= {1, 2, 3, 4, 5, 6, 7}:
        parser.error(f"--cases: expected numbers 1 to 7, got {args.cases!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    ensure_interpreter()
    args = parse_args(argv)
    impls = implementations(args)
    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    bench = Bench(QUICK if args.quick else FULL, impls, work, args.quick)
    bench.results.settings["import_paths"] = {impl.name: impl.path for impl in impls}
    started = time.monotonic()
    try:
        bench.start()
        failed = run_cases(bench, args.case_list)
    finally:
        bench.stop()
    bench.results.settings["wall_s"] = round(time.monotonic() - started, 1)
    errors = [
        f"{case}/{side}: {result['error']}"
        for case, sides in bench.results.cases.items()
        for side, result in sides.items()
        if isinstance(result, dict) and "error" in result
    ]
    notes = list(NOTES) if not args.ours_only else []
    write_results(bench, args.output, notes, errors)
    print_summary(bench, args.output, notes)
    if errors or failed:
        print(f"errors ({len(errors)}); logs kept in {work / 'logs'}", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def implementations(args: argparse.Namespace) -> list[Impl]:
    """Ours, and faas-supervisor unless ``--ours-only``; each on its import path unless
    ``--site``: ours on its layer's tree, theirs on its environment's site-packages."""
    impls = [Impl("ours", sys.executable, DRIVERS / "ours.py", "handlers.lambda_handler")]
    if not args.ours_only:
        theirs = ensure_theirs(args.theirs_python)
        module = "faassupervisor.faas.aws_lambda.function_handler"
        impls.append(Impl("theirs", theirs, DRIVERS / "theirs.py", module))
    if not args.site:
        impls = [
            Impl(
                i.name,
                i.python,
                i.driver,
                i.module,
                ours_path(args.ours_path) if i.name == "ours" else import_path(i.python),
            )
            for i in impls
        ]
    return impls


def run_cases(bench: Bench, numbers: list[int]) -> bool:
    """Run the cases ``numbers`` in order; True when one of them failed as a whole."""
    failed = False
    for number in numbers:
        print(f"case {number}...", flush=True)
        case_started = time.monotonic()
        try:
            CASES[number](bench)
        except BenchError as exc:
            failed = True
            print(f"case {number} failed: {exc}", file=sys.stderr)
        print(f"case {number}: {time.monotonic() - case_started:.0f} s", flush=True)
    return failed


def write_results(bench: Bench, output: Path, notes: list[str], errors: list[str]) -> None:
    """The results, the notes and the errors, as JSON in ``output``."""
    payload = asdict(bench.results)
    payload["notes"] = notes
    payload["errors"] = errors
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n")


def print_summary(bench: Bench, output: Path, notes: list[str]) -> None:
    """The table of rows, the notes, and the machine it ran on."""
    print()
    print(table(bench.results.rows))
    print()
    for note in notes:
        print(textwrap.fill(note, width=100, initial_indent="- ", subsequent_indent="  "))
    if notes:
        print()
    machine = bench.results.machine
    print(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['system']}; moto "
        f"{machine['moto']}; {bench.results.settings['wall_s']} s; results in {output}"
    )
