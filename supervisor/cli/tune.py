"""``tune``: measure a function at Lambda's memory sizes on this host and recommend its memory
size and execution mode (``supervisor.tune``)."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from supervisor.cli.options import add_function_option, positive_int

if TYPE_CHECKING:
    from supervisor.bootstrap import Definition
    from supervisor.tune.model import Measurement, Sample
    from supervisor.tune.prices import Instance, Prices
    from supervisor.tune.report import Tuning

__all__ = ["add_parser", "tune"]

DEFAULT_SIZES = "128,256,512,1024,1769,3008,10240"
# SCAR's default Lambda timeout (scar/parser/cfgfile.py), for a definition that sets none.
SCAR_DEFAULT_TIMEOUT_S = 300.0
LAMBDA_MAX_TIMEOUT_S = 900.0
_MIB = 1 << 20

_DESCRIPTION = """\
Run the function's script through the supervisor's pipeline on each sample input at each
Lambda memory size, emulated on this host with a cgroup (the CPU share Lambda gives the
size: 1,769 MB is one vCPU; and its memory limit: running out of memory is a result), and
on the Batch instance.  Print per size the duration, peak memory and cost per invocation,
what Batch would cost, and recommend the memory size (by --strategy) and the execution mode
(lambda, lambda-batch or batch).  Writes tune.json and tune.png.
"""

_EPILOG = """\
How the execution mode is chosen, at the recommended size: lambda when every measured run,
and the run predicted for the largest input, ends within the timeout less the reserve, less
the margin; lambda-batch when the typical input does and the largest does not; batch when
the typical input does not at any size, when every size runs out of memory, or when the
function asks for a GPU (batch.enable_gpu: nothing is measured then).  With several inputs,
duration is fitted against input size, and the table says from what input size a run would
pass 15 minutes.  Sizes that would get more CPUs than this host has are marked capped and
never recommended.

Needs root on Linux with the cgroup v1 cpu and memory controllers; exit code 2 where they
cannot be used, for a bad definition or a bad argument; 1 when every run failed.

example:
  sudo {prog} tune examples/av-workflow/workflow.yaml --function av-ffmpeg \\
      --input small.mp4 --input big.mp4 --memory 512,1024,1769 --runs 3 --apply
"""


def add_parser(commands: Any, prog: str) -> None:
    """Add ``tune`` to the command line's subcommands."""
    parser = commands.add_parser(
        "tune",
        help="measure a function at Lambda memory sizes and recommend its size and mode",
        description=_DESCRIPTION,
        epilog=_EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", type=Path, metavar="DEFINITION", help="the function definition")
    add_function_option(parser)
    parser.add_argument(
        "--input",
        dest="inputs",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="a sample input file (repeat for several: duration is then fitted against size)",
    )
    parser.add_argument(
        "--memory",
        default=DEFAULT_SIZES,
        metavar="MB,MB",
        help=f"the Lambda memory sizes to measure (default: {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--batch-instance",
        default="m5.large",
        metavar="TYPE",
        help="the EC2 instance type of the Batch compute environment (default: m5.large)",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=3,
        metavar="N",
        help="runs per input and size (default: 3)",
    )
    parser.add_argument(
        "--strategy",
        choices=("cost", "speed", "balanced"),
        default="cost",
        help="cost: the cheapest size; speed: the fastest (the cheapest of those within 5%%); "
        "balanced: a weight between the two (default: cost)",
    )
    parser.add_argument(
        "--weight",
        type=float,
        default=0.5,
        metavar="W",
        help="for balanced: 0 is speed only, 1 is cost only (default: 0.5)",
    )
    parser.add_argument(
        "--architecture",
        choices=("x86_64", "arm64"),
        default="x86_64",
        help="whose Lambda price the strategy reads (both are reported; default: x86_64)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="the function's Lambda timeout in seconds (default: the definition's timeout, "
        "else 300, SCAR's default; at most 900)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.2,
        metavar="SHARE",
        help="the share of the timeout less the reserve kept free (default: 0.2)",
    )
    parser.add_argument(
        "--typical-size",
        type=float,
        metavar="MB",
        help="the input size of a typical event (default: the median sample's)",
    )
    parser.add_argument(
        "--largest-size",
        type=float,
        metavar="MB",
        help="the largest input to expect (default: the largest sample's)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        metavar="FILE",
        help="a price file like the packaged one (supervisor/tune/prices.json)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        default=Path(),
        help="where tune.json and tune.png go (default: the current folder)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where the runs keep their files, kept afterwards (default: a temporary folder, "
        "removed)",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="write the recommended memory and execution_mode into the definition file",
    )
    parser.set_defaults(command="tune", handler=tune)


class _UsageError(Exception):
    """A mistake in the command line or the files it names: printed, exit code 2."""


def tune(args: argparse.Namespace) -> int:
    """Measure, report, write tune.json and tune.png, and apply when asked."""
    from supervisor.lambda_sizes import CgroupUnavailableError, LambdaSizeError

    try:
        return _tune(args)
    except _UsageError as exc:
        print(f"tune: {exc}", file=sys.stderr)
    except LambdaSizeError as exc:
        print(f"tune: --memory: {exc}", file=sys.stderr)
    except CgroupUnavailableError as exc:
        print(f"tune: cannot emulate Lambda's memory sizes here: {exc}", file=sys.stderr)
        print(_NO_CGROUPS, file=sys.stderr)
    return EXIT_USAGE


_NO_CGROUPS = """\
tune limits each run with a cgroup v1 (cpu and memory controllers), which needs root on a
Linux host that has them: run it there with sudo (in a container: --privileged, with
/sys/fs/cgroup writable).  Inside Lambda there is nothing to emulate: the size is real;
use AWS Lambda Power Tuning there."""


def _tune(args: argparse.Namespace) -> int:
    from supervisor import logs
    from supervisor.lambda_sizes import parse_sizes

    if os.environ.get("AWS_LAMBDA_RUNTIME_API") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        from supervisor.lambda_sizes import CgroupUnavailableError

        raise CgroupUnavailableError("this process runs inside AWS Lambda")
    sizes = parse_sizes(args.memory)
    definition = _definition(args)
    logs.configure_cli("WARNING", secrets=definition.secrets)
    samples = _samples(args.inputs)
    prices, instance = _prices(args)
    settings = _Settings(args, definition, samples)
    measurements, batch = _measure(args, definition, samples, sizes, instance, settings)
    tuning = _tuning(args, definition, samples, prices, instance, settings, measurements, batch)
    return _finish(args, tuning)


def _definition(args: argparse.Namespace) -> Definition:
    from supervisor import bootstrap
    from supervisor.environment import local_environ
    from supervisor.errors import ConfigError

    _readable(args.config, "the definition file:")
    environ = local_environ(os.environ, sys.executable)
    try:
        return bootstrap.load(environ, path=args.config, function=args.function, strict=True)
    except ConfigError as exc:
        raise _UsageError(str(exc)) from None


def _readable(path: Path, what: str) -> None:
    """Raise a usage error unless ``path`` is a file this process can read."""
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise _UsageError(f"{what} no such file: {path}") from None
    except IsADirectoryError:
        raise _UsageError(f"{what} a folder, not a file: {path}") from None
    except OSError as exc:
        raise _UsageError(f"{what} cannot read {path}: {exc.strerror}") from None


def _samples(paths: list[Path]) -> tuple[Sample, ...]:
    from supervisor.tune.model import Sample

    found: list[Sample] = []
    for path in paths:
        _readable(path, f"--input {path}:")
        sample = Sample.of(path)
        if any(other.name == sample.name for other in found):
            raise _UsageError(f"--input {path}: two inputs are named {sample.name}")
        found.append(sample)
    return tuple(found)


def _prices(args: argparse.Namespace) -> tuple[Prices, Instance]:
    from supervisor.errors import ConfigError
    from supervisor.tune.prices import load_prices

    try:
        prices = load_prices(args.prices)
        return prices, prices.instance(args.batch_instance)
    except ConfigError as exc:
        raise _UsageError(str(exc)) from None


class _Settings:
    """What the runs and the advice are judged against, from the command line and the
    definition."""

    def __init__(
        self, args: argparse.Namespace, definition: Definition, samples: tuple[Sample, ...]
    ):
        from supervisor.tune.advice import Budget

        data = definition.config._data or {}
        self.gpu = _gpu_asked(data)
        self.timeout_s = _timeout(args.timeout, data.get("timeout"))
        reserve = definition.config.timeout_threshold
        if not 0 <= args.margin < 1:
            raise _UsageError(f"--margin: expected a share from 0 to below 1, got {args.margin:g}")
        if reserve >= self.timeout_s:
            raise _UsageError(
                f"the reserve (container.timeout_threshold, {reserve:g} s) leaves nothing of "
                f"the {self.timeout_s:g} s timeout"
            )
        self.budget = Budget(timeout_s=self.timeout_s, reserve_s=reserve, margin=args.margin)
        sizes = sorted(sample.size_bytes for sample in samples)
        self.typical_bytes = _bytes(args.typical_size, "--typical-size") or int(
            statistics.median_low(sizes)
        )
        self.largest_bytes = _bytes(args.largest_size, "--largest-size") or sizes[-1]
        if self.largest_bytes < self.typical_bytes:
            raise _UsageError("--largest-size is smaller than the typical input's size")
        if not 0 <= args.weight <= 1:
            raise _UsageError(f"--weight: expected 0 to 1, got {args.weight:g}")


def _gpu_asked(data: dict[str, Any]) -> bool:
    batch = data.get("batch")
    return isinstance(batch, dict) and batch.get("enable_gpu") in (True, "true", "True")


def _timeout(given: float | None, defined: Any) -> float:
    if given is not None:
        if not 0 < given <= LAMBDA_MAX_TIMEOUT_S:
            raise _UsageError(f"--timeout: Lambda allows 1 to 900 seconds, got {given:g}")
        return given
    try:
        value = float(defined) if defined is not None else SCAR_DEFAULT_TIMEOUT_S
    except (TypeError, ValueError):
        raise _UsageError(f"the definition's timeout is not a number: {defined!r}") from None
    if value <= 0:
        raise _UsageError(f"the definition's timeout must be positive, got {value:g}")
    return min(value, LAMBDA_MAX_TIMEOUT_S)


def _bytes(megabytes: float | None, option: str) -> int | None:
    if megabytes is None:
        return None
    if megabytes <= 0:
        raise _UsageError(f"{option}: expected a size in MB above 0, got {megabytes:g}")
    return int(megabytes * _MIB)


def _measure(
    args: argparse.Namespace,
    definition: Definition,
    samples: tuple[Sample, ...],
    sizes: list[Any],
    instance: Instance,
    settings: _Settings,
) -> tuple[tuple[Measurement, ...], Measurement | None]:
    """The measurements at the Lambda sizes and on the Batch instance (none for a GPU
    function)."""
    from supervisor.lambda_sizes import InstanceSize
    from supervisor.tune.measure import measure

    if settings.gpu:
        return (), None
    targets: list[Any] = [*sizes, InstanceSize(instance.name, instance.vcpus, instance.memory_mib)]
    own_work = args.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="supervisor-tune-")) if own_work else args.work_dir
    if own_work:
        work_dir.chmod(0o755)  # the script runs as nobody: it must reach its folders
    try:
        found = measure(
            args.config,
            args.function,
            samples,
            targets,
            runs=args.runs,
            timeout_s=settings.timeout_s,
            work_dir=work_dir.resolve(),
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    finally:
        if own_work:
            shutil.rmtree(work_dir, ignore_errors=True)
    return tuple(found[:-1]), found[-1]


def _tuning(
    args: argparse.Namespace,
    definition: Definition,
    samples: tuple[Sample, ...],
    prices: Prices,
    instance: Instance,
    settings: _Settings,
    measurements: tuple[Measurement, ...],
    batch: Measurement | None,
) -> Tuning:
    from supervisor.lambda_sizes import available_cpus
    from supervisor.tune.advice import advise
    from supervisor.tune.measure import default_script_user
    from supervisor.tune.report import Tuning

    advice = advise(
        measurements,
        prices,
        settings.budget,
        strategy=args.strategy,
        weight=args.weight,
        architecture=args.architecture,
        gpu=settings.gpu,
        typical_bytes=settings.typical_bytes,
        largest_bytes=settings.largest_bytes,
    )
    return Tuning(
        function=definition.config.name,
        definition=args.config,
        samples=samples,
        runs=args.runs,
        prices=prices,
        architecture=args.architecture,
        budget=settings.budget,
        typical_bytes=settings.typical_bytes,
        largest_bytes=settings.largest_bytes,
        gpu=settings.gpu,
        measurements=measurements,
        batch=batch,
        instance=instance,
        advice=advice,
        host_cpus=available_cpus(),
        script_user=default_script_user(definition.config.script_user),
    )


def _finish(args: argparse.Namespace, tuning: Tuning) -> int:
    """Print the report, write tune.json and tune.png, apply; the exit code."""
    from supervisor.tune import chart, report

    print("\n".join(report.lines(tuning)))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    data = report.tune_json(tuning)
    json_path = args.output_dir / "tune.json"
    report.write_json(data, json_path)
    png = chart.draw(data, args.output_dir / "tune.png")
    written = [str(json_path)] + ([str(png)] if png else [])
    print(f"\nwrote {', '.join(written)}")
    if png is None:
        print(
            "matplotlib is not installed: no tune.png (pip install 'serverless-supervisor[tune]')"
        )
    if args.apply and not _apply(args, tuning):
        return EXIT_FAILED
    measured = [run for m in tuning.measurements for run in m.runs]
    if measured and all(run.status == "failed" for run in measured):
        print("every run failed: see the details in tune.json", file=sys.stderr)
        if tuning.script_user is not None:
            print(
                f"the script ran as {tuning.script_user}: if it needs files only another "
                "user can read, choose its user with script_user in the definition or "
                "SUPERVISOR_SCRIPT_USER",
                file=sys.stderr,
            )
        return EXIT_FAILED
    return EXIT_OK


def _apply(args: argparse.Namespace, tuning: Tuning) -> bool:
    """Write the recommendation into the definition; False (the reason printed) if not."""
    from supervisor.tune.apply import ApplyError, apply_recommendation

    advice = tuning.advice
    if advice.memory_mb is None:
        print("--apply: nothing written: no size can be recommended", file=sys.stderr)
        return False
    try:
        before = apply_recommendation(
            args.config, args.function, advice.memory_mb, advice.execution_mode
        )
    except ApplyError as exc:
        print(f"--apply: {exc}", file=sys.stderr)
        return False
    print(
        f"{args.config}: memory {before['memory']} -> {advice.memory_mb}, execution_mode "
        f"{before['execution_mode']} -> {advice.execution_mode}"
    )
    return True
