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
from typing import Any

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
    parser.add_argument(
        "--cases", help="which cases, e.g. 1,2,6 (default: all; 1,2,3 with --lambda-memory)"
    )
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
    parser.add_argument(
        "--lambda-memory",
        metavar="MB,MB",
        help="run the cases at these Lambda memory sizes, e.g. 128,512,1769: the init at full "
        "speed, each handler call in a cgroup v1 with the size's CPU share and memory (root)",
    )
    args = parser.parse_args(argv)
    if args.site and args.ours_path:
        parser.error("--ours-path and --site: give one (--site runs ours on .venv)")
    args.sizes = []
    if args.lambda_memory is not None:
        # Not at the top: ensure_interpreter() must run before the project is importable.
        from supervisor.lambda_sizes import LambdaSizeError, parse_sizes

        try:
            args.sizes = parse_sizes(args.lambda_memory)
        except LambdaSizeError as exc:
            parser.error(f"--lambda-memory: {exc}")
    if args.cases is None:
        args.cases = "1,2,3" if args.sizes else "1,2,3,4,5,6,7"
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
    if args.sizes:
        from harness.sizes import cgroup_problem

        problem = cgroup_problem(args.sizes[0])
        if problem is not None:
            print(f"--lambda-memory: {problem}", file=sys.stderr)
            return 2
    impls = implementations(args)
    work = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    bench = Bench(QUICK if args.quick else FULL, impls, work, args.quick)
    bench.results.settings["import_paths"] = {impl.name: impl.path for impl in impls}
    started = time.monotonic()
    try:
        bench.start()
        failed = run_all(bench, args)
    finally:
        bench.stop()
    bench.results.settings["wall_s"] = round(time.monotonic() - started, 1)
    errors, limits = failures(bench)
    notes = list(NOTES) if not args.ours_only else []
    if args.sizes:
        from harness.sizes import size_notes

        notes += size_notes(args.sizes[0])
    write_results(bench, args.output, notes, errors, limits)
    print_summary(bench, args.output, notes)
    for limit in limits:
        print(f"limit hit: {limit}")
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


def run_all(bench: Bench, args: argparse.Namespace) -> bool:
    """The cases at full CPU, or once per ``--lambda-memory`` size; True when one of them
    failed as a whole."""
    if not args.sizes:
        return run_cases(bench, args.case_list)
    from harness.sizes import run_at_size

    failed = False
    for size in args.sizes:
        print(f"at {size.memory_mb} MB:", flush=True)
        failed = run_at_size(bench, size, args.case_list, run_case) or failed
    return failed


def run_cases(bench: Bench, numbers: list[int]) -> bool:
    """Run the cases ``numbers`` in order; True when one of them failed as a whole."""
    failed = False
    for number in numbers:
        failed = run_case(bench, number) or failed
    return failed


def run_case(bench: Bench, number: int) -> bool:
    """Run case ``number``; True when it failed as a whole."""
    print(f"case {number}...", flush=True)
    case_started = time.monotonic()
    failed = False
    try:
        CASES[number](bench)
    except BenchError as exc:
        failed = True
        print(f"case {number} failed: {exc}", file=sys.stderr)
    print(f"case {number}: {time.monotonic() - case_started:.0f} s", flush=True)
    return failed


def failures(bench: Bench) -> tuple[list[str], list[str]]:
    """The sides that failed: errors, and (at a Lambda size) the limits hit (OOM kills,
    timeouts), which are results of that size rather than failures of the run."""
    errors: list[str] = []
    limits: list[str] = []
    passes = [("", bench.results.cases)] + [
        (f"{key}/", data["cases"]) for key, data in bench.results.lambda_memory.items()
    ]
    for prefix, cases in passes:
        for case, sides in cases.items():
            for side, result in _sides(sides):
                line = f"{prefix}{case}/{side}: {result['error']}"
                (limits if result.get("limit") else errors).append(line)
    return errors, limits


def _sides(sides: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """The failed sides of a case's results, however deep (case 4 nests them)."""
    if not isinstance(sides, dict):
        return []
    if "error" in sides:
        return [(path, sides)]
    found = []
    for name, value in sides.items():
        found += _sides(value, f"{path}/{name}" if path else str(name))
    return found


def write_results(
    bench: Bench, output: Path, notes: list[str], errors: list[str], limits: list[str]
) -> None:
    """The results, the notes and the errors, as JSON in ``output``.

    A full-CPU run replaces the top level of the file and keeps the sizes already in it
    (``lambda_memory``); a run at Lambda sizes replaces only its sizes' entries there, each
    with its own rows, machine, settings, notes, errors and limits hit."""
    payload = asdict(bench.results)
    sizes = payload.pop("lambda_memory")
    previous = _previous(output)
    if sizes:
        for key, entry in sizes.items():
            entry.update(
                machine=payload["machine"],
                settings=payload["settings"],
                notes=notes,
                errors=[line for line in errors if line.startswith(f"{key}/")],
                limits_hit=[line for line in limits if line.startswith(f"{key}/")],
            )
        payload = previous
        payload.setdefault("lambda_memory", {}).update(sizes)
    else:
        payload.update(notes=notes, errors=errors)
        if "lambda_memory" in previous:
            payload["lambda_memory"] = previous["lambda_memory"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n")


def _previous(output: Path) -> dict[str, Any]:
    """What ``output`` holds now, or nothing."""
    try:
        previous = json.loads(output.read_text())
    except (OSError, ValueError):
        return {}
    return previous if isinstance(previous, dict) else {}


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
