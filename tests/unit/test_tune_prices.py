"""The price file and the billing arithmetic of ``tune``: every expected cost is worked out
here by hand from the published prices, never by calling the code a second time."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from supervisor.errors import ConfigError, SupervisorError
from supervisor.tune.prices import (
    Instance,
    LambdaPrice,
    PricesError,
    batch_cost,
    lambda_cost,
    load_prices,
)

# Lambda's published on-demand prices (us-east-1, first tier) and EC2's on-demand Linux
# prices (us-east-1) per hour, written here from the pricing pages, not from the file.
X86_GB_S = 0.0000166667
ARM_GB_S = 0.0000133334
REQUEST = 0.20 / 1_000_000
EC2 = {
    "m5.large": (2, 8 * 1024, 0, 0.096),
    "m5.xlarge": (4, 16 * 1024, 0, 0.192),
    "m5.2xlarge": (8, 32 * 1024, 0, 0.384),
    "c5.large": (2, 4 * 1024, 0, 0.085),
    "c5.xlarge": (4, 8 * 1024, 0, 0.17),
    "c5.2xlarge": (8, 16 * 1024, 0, 0.34),
    "r5.large": (2, 16 * 1024, 0, 0.126),
    "g4dn.xlarge": (4, 16 * 1024, 1, 0.526),
    "g3s.xlarge": (4, 30.5 * 1024, 1, 0.75),
    "p3.2xlarge": (8, 61 * 1024, 1, 3.06),
}
PACKAGED = Path(__file__).parents[2] / "supervisor" / "tune" / "prices.json"


def test_the_packaged_file_holds_the_published_prices() -> None:
    prices = load_prices()
    assert prices.region == "us-east-1"
    assert prices.date
    assert prices.sources["lambda"] == "https://aws.amazon.com/lambda/pricing/"
    assert prices.sources["ec2"].startswith("https://aws.amazon.com/ec2/pricing/")
    x86, arm = prices.lambda_price("x86_64"), prices.lambda_price("arm64")
    assert (x86.usd_per_gb_second, arm.usd_per_gb_second) == (X86_GB_S, ARM_GB_S)
    assert x86.usd_per_request == arm.usd_per_request == pytest.approx(REQUEST, rel=1e-12)
    assert (x86.duration_rounding_ms, x86.mb_per_gb) == (1, 1024)
    assert sorted(prices.instances) == sorted(EC2)
    for name, (vcpus, memory_mib, gpus, usd) in EC2.items():
        assert prices.instance(name) == Instance(name, vcpus, int(memory_mib), gpus, usd)
    assert (prices.batch_increment_s, prices.batch_minimum_s) == (1, 60)
    assert prices.pending_s["instance_running"] < 60 <= prices.pending_s["new_instance"]
    assert "not measured" in prices.pending_note
    assert prices.source == prices.to_json()["source"] == "https://aws.amazon.com/lambda/pricing/"
    assert load_prices(PACKAGED) == prices


@pytest.mark.parametrize(
    ("architecture", "memory_mb", "duration_s", "expected"),
    [
        # 1,024 MB is 1 GB: 2.5 s is 2.5 GB-s.
        ("x86_64", 1024, 2.5, 2.5 * 1.0 * X86_GB_S + REQUEST),
        ("arm64", 1024, 2.5, 2.5 * 1.0 * ARM_GB_S + REQUEST),
        # 128 MB is 0.125 GB; 1.0001 s is billed as 1.001 s (rounded up to the ms).
        ("x86_64", 128, 1.0001, 1.001 * 0.125 * X86_GB_S + REQUEST),
        # 0.3 s is 300 ms, not 301 ms, though 0.3 * 1000 is not 300 in binary floats.
        ("x86_64", 512, 0.3, 0.3 * 0.5 * X86_GB_S + REQUEST),
        # 10,240 MB is 10 GB; 900 s, the longest run.
        ("x86_64", 10240, 900.0, 900 * 10 * X86_GB_S + REQUEST),
        # 1,769 MB for 12.3456 s: billed 12.346 s.
        ("arm64", 1769, 12.3456, 12.346 * (1769 / 1024) * ARM_GB_S + REQUEST),
        # A run of no time still pays the request.
        ("x86_64", 128, 0.0, REQUEST),
    ],
)
def test_a_lambda_invocation_costs_its_gb_seconds_and_its_request(
    architecture: str, memory_mb: int, duration_s: float, expected: float
) -> None:
    price = load_prices().lambda_price(architecture)
    assert lambda_cost(price, memory_mb, duration_s) == pytest.approx(expected, rel=1e-12)


def test_lambda_cost_follows_the_billing_rules_of_the_price() -> None:
    price = LambdaPrice("x86_64", usd_per_gb_second=1.0, usd_per_request=0.0)
    assert lambda_cost(price, 1024, 0.0004) == pytest.approx(0.001)
    coarse = LambdaPrice("x86_64", 1.0, 0.0, duration_rounding_ms=100)  # Lambda before 2020
    assert lambda_cost(coarse, 1024, 0.0004) == pytest.approx(0.1)
    assert lambda_cost(coarse, 1024, 0.2) == pytest.approx(0.2)


@pytest.mark.parametrize(("memory_mb", "duration_s"), [(0, 1.0), (128, -1.0), (128, float("inf"))])
def test_lambda_cost_refuses_what_cannot_be_billed(memory_mb: int, duration_s: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        lambda_cost(load_prices().lambda_price("x86_64"), memory_mb, duration_s)


@pytest.mark.parametrize(
    ("instance", "duration_s", "billed_s", "usd"),
    [
        # Shorter than the minimum: 60 s of an m5.large at $0.096 an hour.
        ("m5.large", 3.1, 60.0, 60 / 3600 * 0.096),
        ("m5.large", 60.0, 60.0, 60 / 3600 * 0.096),
        # Per second, rounded up to the second.
        ("c5.xlarge", 61.2, 62.0, 62 / 3600 * 0.17),
        ("p3.2xlarge", 3600.0, 3600.0, 3.06),
        ("g4dn.xlarge", 1234.0, 1234.0, 1234 / 3600 * 0.526),
    ],
)
def test_a_batch_job_pays_its_instance_per_second_with_a_minute_at_least(
    instance: str, duration_s: float, billed_s: float, usd: float
) -> None:
    prices = load_prices()
    cost = batch_cost(prices, instance, duration_s)
    assert cost.billed_s == billed_s
    assert cost.usd == pytest.approx(usd, rel=1e-12)
    assert cost.instance == prices.instance(instance)
    assert cost.pending_s == prices.pending_s
    assert batch_cost(prices, prices.instance(instance), duration_s) == cost
    data = cost.to_json()
    assert data["instance"] == instance
    assert data["billed_s"] == billed_s
    assert data["cost_usd"] == pytest.approx(usd, rel=1e-12)
    assert set(data["pending_s"]) == {"instance_running", "new_instance"}
    json.dumps(data)


def test_an_unknown_instance_or_architecture_is_a_clear_error() -> None:
    prices = load_prices()
    with pytest.raises(PricesError, match=r"'m9\.huge'.*c5\.2xlarge, c5\.large") as caught:
        prices.instance("m9.huge")
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, SupervisorError)
    with pytest.raises(PricesError, match=r"'riscv'.*arm64, x86_64"):
        prices.lambda_price("riscv")
    with pytest.raises(PricesError, match=r"m9\.huge"):
        batch_cost(prices, "m9.huge", 10.0)


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _packaged() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PACKAGED.read_text(encoding="utf-8"))
    return data


def test_a_file_of_ones_own_replaces_the_packaged_one(tmp_path: Path) -> None:
    data = _packaged()
    data["region"] = "eu-west-1"
    data["lambda"]["architectures"]["x86_64"]["usd_per_gb_second"] = 0.00002
    data["ec2"]["instances"]["t3.micro"] = {
        "vcpus": 2,
        "memory_mib": 1024,
        "gpus": 0,
        "usd_per_hour": 0.0104,
    }
    prices = load_prices(_write(tmp_path, data))
    assert prices.region == "eu-west-1"
    assert lambda_cost(prices.lambda_price("x86_64"), 2048, 1.0) == pytest.approx(
        2 * 0.00002 + REQUEST
    )
    assert batch_cost(prices, "t3.micro", 120).usd == pytest.approx(120 / 3600 * 0.0104)


def _drop(data: dict[str, Any], *key: str) -> None:
    for part in key[:-1]:
        data = data[part]
    del data[key[-1]]


def _set(data: dict[str, Any], value: Any, *key: str) -> None:
    for part in key[:-1]:
        data = data[part]
    data[key[-1]] = value


@pytest.mark.parametrize(
    ("key", "named"),
    [
        (("date",), "'date'"),
        (("lambda", "architectures"), "'lambda.architectures'"),
        (("lambda", "architectures", "arm64", "usd_per_gb_second"), "arm64.usd_per_gb_second"),
        (("lambda", "mb_per_gb"), "'lambda.mb_per_gb'"),
        (("ec2", "minimum_billed_s"), "'ec2.minimum_billed_s'"),
        (("ec2", "instances", "m5.large", "vcpus"), """'ec2.instances["m5.large"].vcpus'"""),
        (("batch", "pending_s", "new_instance"), "'batch.pending_s.new_instance'"),
    ],
)
def test_a_missing_key_names_the_file_and_the_key(
    tmp_path: Path, key: tuple[str, ...], named: str
) -> None:
    data = _packaged()
    _drop(data, *key)
    path = _write(tmp_path, data)
    with pytest.raises(PricesError, match="has no key") as caught:
        load_prices(path)
    assert str(path) in str(caught.value)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        (("lambda", "architectures", "x86_64", "usd_per_gb_second"), "0.0000166667", "> 0"),
        (("lambda", "architectures", "x86_64", "usd_per_gb_second"), 0, "> 0"),
        (("lambda", "architectures", "x86_64", "usd_per_million_requests"), -0.1, ">= 0"),
        (("lambda", "duration_rounding_ms"), 0.5, "whole number"),
        (("ec2", "instances", "c5.large", "usd_per_hour"), None, "> 0"),
        (("ec2", "instances", "c5.large", "gpus"), True, "whole number"),
        (("ec2", "instances"), {}, "non-empty table"),
        (("region",), "", "non-empty string"),
    ],
)
def test_a_bad_value_names_the_file_the_key_and_the_value(
    tmp_path: Path, key: tuple[str, ...], value: Any, wanted: str
) -> None:
    data = copy.deepcopy(_packaged())
    _set(data, value, *key)
    path = _write(tmp_path, data)
    with pytest.raises(PricesError, match=wanted) as caught:
        load_prices(path)
    message = str(caught.value)
    assert str(path) in message
    assert key[-1] in message
    assert json.dumps(value) in message


def test_a_file_that_cannot_be_read_or_parsed_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(PricesError, match=re.escape(f"cannot read the price file {missing}")):
        load_prices(missing)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(PricesError, match=re.escape(f"{broken} is not JSON")):
        load_prices(broken)
    listed = _write(tmp_path, [1, 2])
    with pytest.raises(PricesError, match="has no key 'date'"):
        load_prices(listed)
