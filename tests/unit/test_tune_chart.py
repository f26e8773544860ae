"""tune.png: drawn from tune.json data for each kind of tuning run, opened and looked at."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from supervisor.tune import chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MEMORY_MB = (128, 256, 512, 1024, 1769, 3008, 10240)
HOST_CPUS = 2
MIB = 1 << 20
# Lambda's x86_64 and arm64 prices per GB-second and per request (us-east-1).
GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
REQUEST = 0.0000002


def _cost(memory_mb: int, seconds: float) -> dict[str, float]:
    billed = memory_mb / 1024 * seconds
    return {arch: billed * price + REQUEST for arch, price in GB_SECOND.items()}


def _size(memory_mb: int, typical_s: float | None, **fields: Any) -> dict[str, Any]:
    """A size as report.py writes it: a single-threaded script, ok at the typical input."""
    share = memory_mb / 1769
    spread = 0.0 if typical_s is None else typical_s * 0.04
    size: dict[str, Any] = {
        "memory_mb": memory_mb,
        "name": f"{memory_mb} MB",
        "cpu_share": share,
        "cpus_given": min(share, HOST_CPUS),
        "capped": share > HOST_CPUS,
        "label": f"{memory_mb} MB ({share:.1%} of a CPU)",
        "status": "ok",
        "typical_s": typical_s,
        "typical_predicted": False,
        "min_s": None if typical_s is None else typical_s - spread,
        "max_s": None if typical_s is None else typical_s + spread,
        "peak_memory_mb": 97.0,
        "cost_usd": None if typical_s is None else _cost(memory_mb, typical_s),
        "fit": None,
        "input_mb_at_15_min": None,
        "input_mb_at_budget": None,
        "runs": [
            {
                "sample": "a.mp4",
                "input_bytes": 1_000_000,
                "status": "ok",
                "duration_s": typical_s or 0.0,
                "peak_memory_mb": 97.0,
                "detail": "",
            }
        ],
    }
    size.update(fields)
    return size


def _tune(sizes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tool": "serverless-supervisor 0.1.0",
        "function": "av-ffmpeg",
        "definition": "examples/av-workflow/workflow.yaml",
        "measured_at": "2026-12-03T13:40:00Z",
        "host": {"cpus": HOST_CPUS, "cpu": "Intel(R) Xeon(R) Processor"},
        "prices": {
            "date": "2026-12-01",
            "region": "us-east-1",
            "source": "https://aws.amazon.com/lambda/pricing/",
        },
        "architecture": "x86_64",
        "timeout_s": 900,
        "reserve_s": 10,
        "margin": 0.2,
        "budget_s": 712.0,
        "runs_per_input": 3,
        "samples": [{"name": "a.mp4", "bytes": 1_000_000}],
        "typical_bytes": 1_000_000,
        "largest_bytes": 5_000_000,
        "gpu": {"asked": False, "measured": True, "note": ""},
        "sizes": sizes,
        "batch": {
            "instance": "m5.large",
            "vcpus": 2,
            "memory_mib": 8192,
            "gpus": 0,
            "usd_per_hour": 0.096,
            "capped": False,
            "cpus_given": 2.0,
            "status": "ok",
            "typical_s": 3.1,
            "billed_s": 60.0,
            "cost_usd": 0.0016,
            "pending_s": {"instance_running": 15, "new_instance": 180},
            "runs": [],
        },
        "recommendation": {
            "strategy": "cost",
            "weight": 0.5,
            "memory_mb": 1024,
            "execution_mode": "lambda",
            "reason": "1024 MB is the cheapest size whose runs all end within the budget.",
            "typical_s": 5.2,
            "cost_usd": _cost(1024, 5.2)["x86_64"],
        },
    }
    data.update(fields)
    return data


def _cpu_bound(memory_mb: int) -> float:
    """A single-threaded script: 3 s at one vCPU, slower in proportion below it."""
    return 3.0 * max(1.0, 1769 / memory_mb) + 0.2


def all_ok() -> dict[str, Any]:
    return _tune([_size(memory, _cpu_bound(memory)) for memory in MEMORY_MB])


def oom_at_small_sizes() -> dict[str, Any]:
    sizes = [_size(memory, _cpu_bound(memory)) for memory in MEMORY_MB]
    for index, status in ((0, "oom"), (1, "oom"), (2, "timeout")):
        sizes[index].update(
            status=status, typical_s=None, min_s=None, max_s=None, cost_usd=None, fit=None
        )
        sizes[index]["runs"][0].update(status=status, detail=f"{status} at the typical input")
    # 512 MB and up run the typical input; at 1,024 MB the largest input runs out of memory.
    sizes[3]["status"] = "oom"
    sizes[3]["runs"].append(
        {
            "sample": "e.mp4",
            "input_bytes": 5_000_000,
            "status": "oom",
            "duration_s": 1.0,
            "peak_memory_mb": 1024.0,
            "detail": "killed by the memory limit",
        }
    )
    return _tune(sizes)


def capped_sizes() -> dict[str, Any]:
    data = all_ok()
    assert [size["memory_mb"] for size in data["sizes"] if size["capped"]] == [10240]
    data["sizes"][5].update(cpus_given=1.5, capped=True)
    data["batch"].update(instance="c5.4xlarge", vcpus=16, capped=True, cpus_given=2.0)
    data["recommendation"].update(strategy="speed", memory_mb=10240)
    return data


def predicted_values() -> dict[str, Any]:
    """Durations at the typical input predicted by the fit where no run was measured there."""
    data = all_ok()
    for size in data["sizes"][4:]:
        size.update(typical_predicted=True, min_s=None, max_s=None)
        size["fit"] = {"intercept_s": 0.5, "slope_s_per_mb": 2.1, "r2": 0.998, "points": 2}
    data["recommendation"].update(
        strategy="balanced", weight=0.3, memory_mb=1769, execution_mode="lambda-batch"
    )
    return data


def gpu_function() -> dict[str, Any]:
    return _tune(
        [],
        function="yolov3",
        gpu={
            "asked": True,
            "measured": False,
            "note": "yolov3 asks for a GPU (batch.enable_gpu) and this host has none.",
        },
        batch=None,
        recommendation={
            "strategy": "cost",
            "weight": 0.5,
            "memory_mb": None,
            "execution_mode": "batch",
            "reason": "It asks for a GPU, which only Batch gives.",
            "typical_s": None,
            "cost_usd": None,
        },
    )


def nothing_fits() -> dict[str, Any]:
    """Every size runs out of memory: no duration, no cost, Batch recommended."""
    data = _tune([_size(memory, None, status="oom") for memory in MEMORY_MB])
    data["recommendation"].update(
        memory_mb=None, execution_mode="batch", typical_s=None, cost_usd=None
    )
    return data


def single_size() -> dict[str, Any]:
    return _tune([_size(1024, 5.2)], batch=None)


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "all_ok": all_ok,
    "oom_at_small_sizes": oom_at_small_sizes,
    "capped_sizes": capped_sizes,
    "predicted_values": predicted_values,
    "gpu_function": gpu_function,
    "nothing_fits": nothing_fits,
    "single_size": single_size,
}


def _pixels(path: Path) -> Any:
    image = pytest.importorskip("matplotlib.image")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    return image.imread(path)


def _colours(pixels: Any) -> set[tuple[int, ...]]:
    rgb = (pixels[:, :, :3] * 255).round().astype(int)
    return {tuple(value) for value in rgb.reshape(-1, 3).tolist()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_draw_writes_a_chart_of_about_1000_by_600_pixels(case: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    data = CASES[case]()
    before = copy.deepcopy(data)
    path = tmp_path / "tune.png"
    assert chart.draw(data, path) == path
    pixels = _pixels(path)
    assert pixels.shape[:2] == (600, 1000)
    # White background, and not blank: a chart has lines, text and bands in many shades.
    assert tuple(pixels[0, 0, :3]) == (1.0, 1.0, 1.0)
    assert len(_colours(pixels)) > 50
    assert not (pixels[:, :, :3] == 1.0).all()
    assert data == before


def _ink(path: Path, box: tuple[int, int, int, int]) -> int:
    """How many pixels in the box (left, top, right, bottom) are not white."""
    left, top, right, bottom = box
    pixels = _pixels(path)[top:bottom, left:right, :3]
    return int((pixels < 0.97).any(axis=2).sum())


# The last size's column inside the axes (seven sizes from x = 80 to 900 pixels), above the
# line of durations.
LAST_COLUMN = (790, 85, 895, 300)


def test_capped_sizes_are_hatched(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    capped, plain = all_ok(), all_ok()
    assert capped["sizes"][-1]["capped"]
    for data in (capped, plain):
        # Both have a capped size (so the same legend and layout).
        data["sizes"][5].update(capped=True, cpus_given=1.5)
    plain["sizes"][-1].update(capped=False, cpus_given=plain["sizes"][-1]["cpu_share"])
    chart.draw(capped, tmp_path / "capped.png")
    chart.draw(plain, tmp_path / "plain.png")
    assert (
        _ink(tmp_path / "capped.png", LAST_COLUMN)
        > _ink(tmp_path / "plain.png", LAST_COLUMN) + 1000
    )


def test_sizes_without_a_duration_are_labelled(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ok, failed = all_ok(), all_ok()
    failed["sizes"][-1].update(status="timeout", typical_s=None, min_s=None, max_s=None)
    failed["sizes"][-1]["cost_usd"] = None
    ok["sizes"][-1].update(capped=False)
    failed["sizes"][-1].update(capped=False)
    chart.draw(ok, tmp_path / "ok.png")
    chart.draw(failed, tmp_path / "failed.png")
    pixels = _pixels(tmp_path / "failed.png")[:, :, :3]
    left, top, right, bottom = LAST_COLUMN
    column = pixels[top : bottom + 120, left:right]
    # "timeout" in red at the middle of the column, and a light red band behind it.
    red = (column[:, :, 0] > 0.7) & (column[:, :, 1] < 0.3) & (column[:, :, 2] < 0.3)
    assert int(red.sum()) > 30
    ok_column = _pixels(tmp_path / "ok.png")[top : bottom + 120, left:right, :3]
    assert not ((ok_column[:, :, 0] > 0.7) & (ok_column[:, :, 1] < 0.3)).any()


def test_predicted_durations_are_drawn_apart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    measured, predicted = all_ok(), all_ok()
    for data in (measured, predicted):
        # Both have a predicted size (so the same legend and layout) and no bars at 10,240 MB.
        data["sizes"][0].update(typical_predicted=True)
        data["sizes"][-1].update(min_s=None, max_s=None)
    predicted["sizes"][-1].update(typical_predicted=True)
    chart.draw(measured, tmp_path / "measured.png")
    chart.draw(predicted, tmp_path / "predicted.png")
    # From 3,008 MB to 10,240 MB.
    region = (slice(85, 380), slice(680, 895))
    before = _pixels(tmp_path / "measured.png")[region]
    after = _pixels(tmp_path / "predicted.png")[region]
    assert int((before != after).any(axis=2).sum()) > 100


def test_the_batch_note_is_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    without_batch = all_ok()
    without_batch["batch"] = None
    chart.draw(all_ok(), tmp_path / "batch.png")
    chart.draw(without_batch, tmp_path / "bare.png")
    # The note is a box above the footer, across the left of the figure.
    footer = (0, 470, 1000, 600)
    assert _ink(tmp_path / "batch.png", footer) > _ink(tmp_path / "bare.png", footer) + 500


def test_the_gpu_chart_is_text_not_empty_axes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    gpu = tmp_path / "gpu.png"
    chart.draw(gpu_function(), gpu)
    pixels = _pixels(gpu)[:, :, :3]
    # No axes: no long straight dark line across the picture (an axis spine would be one).
    dark = (pixels < 0.3).all(axis=2)
    assert int(dark.sum(axis=1).max()) < 600
    assert int(dark.sum(axis=0).max()) < 300
    assert dark.sum() > 2000


def test_costs_read_as_dollars_without_an_exponent() -> None:
    assert chart._dollars(5.3e-05) == "$0.000053"
    assert chart._dollars(0.0016) == "$0.0016"
    assert chart._dollars(2.1e-06) == "$0.0000021"
    assert chart._dollars(1.234) == "$1.23"
    assert chart._dollars(0.0) == "$0"


def test_the_title_names_the_function_the_strategy_and_the_recommendation() -> None:
    title = chart._title(predicted_values())
    assert "av-ffmpeg" in title
    assert "balanced, weight 0.3" in title
    assert "1769 MB, lambda-batch" in title
    assert chart._recommended(gpu_function()["recommendation"]) == "recommended: batch"


def test_the_batch_note_gives_the_instance_duration_and_cost() -> None:
    note = chart._batch_note(capped_sizes()["batch"])
    assert note is not None
    assert "c5.4xlarge (16 vCPUs, 8 GiB): 3.10 s per job, $0.0016 per job (billed 60 s)" in note
    assert "capped: this host gave 2 CPUs" in note
    assert "15 s in the queue" in note
    assert chart._batch_note(None) is None
    failed = chart._batch_note({"instance": "m5.large", "status": "oom", "typical_s": None})
    assert failed is not None
    assert "runs ended OOM" in failed


def test_neighbouring_capped_sizes_share_one_label() -> None:
    sizes = [_size(memory, 1.0) for memory in (1024, 4096, 6144, 8192, 10240)]
    sizes[0]["capped"] = False
    sizes[1]["capped"] = True
    sizes[2]["capped"] = False
    assert chart._capped_runs(sizes) == [(1, 1), (3, 4)]
    assert chart._capped_label(sizes[4:]) == "capped\n2 of 5.8 CPUs"
    assert chart._capped_label(sizes[3:]) == "capped: 2 CPUs given\n(the sizes get 4.6 to 5.8)"


def test_partial_failures_name_the_smallest_input_that_failed() -> None:
    size = oom_at_small_sizes()["sizes"][3]
    assert chart._partial_trouble(size, "oom") == f"OOM from {5_000_000 / MIB:.3g} MB"


def test_without_matplotlib_draw_returns_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = tmp_path / "tune.png"
    assert chart.draw(all_ok(), path) is None
    assert not path.exists()
    assert chart.MISSING_MATPLOTLIB in caplog.text


def test_without_matplotlib_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """As on a host without the extra: matplotlib cannot be imported, draw says so in the
    log (where the program has one) and the program goes on."""
    code = textwrap.dedent(
        f"""
        import logging, sys
        logging.basicConfig()
        sys.modules["matplotlib"] = None
        from pathlib import Path
        from supervisor.tune import chart
        result = chart.draw({{"function": "f", "sizes": []}}, Path({str(tmp_path / "t.png")!r}))
        print("result", result)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "result None"
    assert "pip install 'serverless-supervisor[tune]'" in done.stderr
    assert not (tmp_path / "t.png").exists()
