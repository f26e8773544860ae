"""Dated prices and the billing arithmetic of Lambda and of Batch on EC2.

``prices.json`` (next to this module) holds, with its date, region and the pages they come
from: Lambda's price per GB-second and per request for each architecture (the first monthly
tier, no free tier) and its billing rules (the duration rounded up to the millisecond,
1 GB = 1,024 MB); the on-demand Linux price per hour of a few EC2 instances that AWS Batch
compute environments use, with their vCPUs, memory and GPUs, and EC2's billing rules (per
second, 60 seconds at least); and the pending time to expect before a Batch job runs, which
is a typical figure, not a measured one.  A user can pass a file of their own with the same
keys (another region, another date).

Errors (under ``SupervisorError``):

    SupervisorError
     └── ConfigError
          └── PricesError   a price file that cannot be read, a key missing or a bad value
                            in it, an instance or an architecture it has no price for
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from supervisor.errors import ConfigError

__all__ = [
    "BatchCost",
    "Instance",
    "LambdaPrice",
    "Prices",
    "PricesError",
    "batch_cost",
    "lambda_cost",
    "load_prices",
]

_PACKAGED = "prices.json"
_MS_PER_S = 1000
_S_PER_HOUR = 3600
_MILLION = 1_000_000  # the file keeps the published price per million requests
# A duration in seconds times 1,000 is not always a whole number of milliseconds in binary
# floating point (0.3 * 1000 = 300.00000000000006): rounded to this many decimals first, so
# that rounding up to the millisecond does not bill one millisecond more than was run.
_MS_DECIMALS = 6


class PricesError(ConfigError):
    """A price file that cannot be used, or a price that it does not hold: configuration,
    like the function's definition."""


@dataclass(frozen=True)
class LambdaPrice:
    """Lambda's on-demand price for one architecture, with its billing rules."""

    architecture: str
    usd_per_gb_second: float
    usd_per_request: float
    duration_rounding_ms: int = 1
    mb_per_gb: int = 1024


@dataclass(frozen=True)
class Instance:
    """An EC2 instance type and its on-demand Linux price."""

    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    usd_per_hour: float

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.name,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "gpus": self.gpus,
            "usd_per_hour": self.usd_per_hour,
        }


@dataclass(frozen=True)
class Prices:
    """The content of a price file."""

    path: str  # where the prices were read, for messages
    date: str
    region: str
    sources: Mapping[str, str]  # "lambda", "ec2", "batch": the pages the figures come from
    lambda_prices: Mapping[str, LambdaPrice]  # by architecture
    instances: Mapping[str, Instance]  # by name
    batch_increment_s: float  # EC2 bills per second...
    batch_minimum_s: float  # ...with a minimum
    pending_s: Mapping[str, float]  # "instance_running", "new_instance"
    pending_note: str

    @property
    def source(self) -> str:
        """The page of Lambda's prices, which the advice's costs come from."""
        return self.sources.get("lambda", "")

    def lambda_price(self, architecture: str) -> LambdaPrice:
        try:
            return self.lambda_prices[architecture]
        except KeyError:
            known = ", ".join(sorted(self.lambda_prices))
            raise PricesError(
                f"the price file {self.path} has no Lambda price for architecture {architecture!r};"
                f" it has: {known}"
            ) from None

    def instance(self, name: str) -> Instance:
        try:
            return self.instances[name]
        except KeyError:
            known = ", ".join(sorted(self.instances))
            raise PricesError(
                f"the price file {self.path} has no price for instance type {name!r};"
                f" it has: {known} (a price file of your own can add it)"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """What tune.json says of the prices it used."""
        return {
            "date": self.date,
            "region": self.region,
            "source": self.source,
            "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class BatchCost:
    """What one Batch job of ``duration_s`` on ``instance`` costs, and how long it waits."""

    instance: Instance
    duration_s: float
    billed_s: float
    usd: float
    pending_s: Mapping[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.instance.to_json(),
            "billed_s": self.billed_s,
            "cost_usd": self.usd,
            "pending_s": dict(self.pending_s),
        }


def lambda_cost(price: LambdaPrice, memory_mb: int, duration_s: float) -> float:
    """The price in USD of one invocation of ``duration_s`` at ``memory_mb``.

    The duration is rounded up to Lambda's billing unit (one millisecond); GB-seconds are
    ``memory_mb / 1024`` times the billed seconds; the request price is added once.
    """
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be positive, not {memory_mb}")
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a finite number of seconds >= 0, not {duration_s}")
    unit_ms = price.duration_rounding_ms
    billed_ms = math.ceil(round(duration_s * _MS_PER_S / unit_ms, _MS_DECIMALS)) * unit_ms
    gb_seconds = memory_mb / price.mb_per_gb * billed_ms / _MS_PER_S
    return gb_seconds * price.usd_per_gb_second + price.usd_per_request


def batch_cost(prices: Prices, instance: str | Instance, duration_s: float) -> BatchCost:
    """What a Batch job that runs ``duration_s`` costs on ``instance``.

    Assumed: one job per instance (the job pays for the whole instance, as a compute
    environment whose instances fit one job each); EC2's per-second billing of on-demand
    Linux instances, rounded up to the second, with its 60-second minimum; the instance's
    start (its boot, joining the cluster, pulling the image) is not billed to the job: it
    is reported as ``pending_s``, the wait to expect before the job runs.
    """
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a finite number of seconds >= 0, not {duration_s}")
    found = prices.instance(instance) if isinstance(instance, str) else instance
    step = prices.batch_increment_s
    billed = max(prices.batch_minimum_s, math.ceil(round(duration_s / step, 6)) * step)
    return BatchCost(
        instance=found,
        duration_s=duration_s,
        billed_s=float(billed),
        usd=billed / _S_PER_HOUR * found.usd_per_hour,
        pending_s=dict(prices.pending_s),
    )


def load_prices(path: Path | None = None) -> Prices:
    """Read a price file: ``path``, or the one packaged with this module."""
    if path is None:
        packaged = resources.files(__package__ or "supervisor.tune").joinpath(_PACKAGED)
        where, text = str(packaged), packaged.read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PricesError(f"cannot read the price file {where}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PricesError(f"the price file {where} is not JSON: {exc}") from exc
    return _Reader(where, data).prices()


class _Reader:
    """Reads a price file's keys, each error naming the file and the key."""

    def __init__(self, where: str, data: Any) -> None:
        self._where = where
        self._data = data

    def prices(self) -> Prices:
        return Prices(
            path=self._where,
            date=self._text("date"),
            region=self._text("region"),
            sources={name: self._text("sources", name) for name in self._table("sources")},
            lambda_prices={
                name: self._lambda_price(name) for name in self._table("lambda", "architectures")
            },
            instances={name: self._instance(name) for name in self._table("ec2", "instances")},
            batch_increment_s=self._number("ec2", "billing_increment_s"),
            batch_minimum_s=self._number("ec2", "minimum_billed_s", zero=True),
            pending_s={
                name: self._number("batch", "pending_s", name, zero=True)
                for name in ("instance_running", "new_instance")
            },
            pending_note=self._text("batch", "note"),
        )

    def _lambda_price(self, name: str) -> LambdaPrice:
        key = ("lambda", "architectures", name)
        return LambdaPrice(
            architecture=name,
            usd_per_gb_second=self._number(*key, "usd_per_gb_second"),
            usd_per_request=self._number(*key, "usd_per_million_requests", zero=True) / _MILLION,
            duration_rounding_ms=self._whole("lambda", "duration_rounding_ms"),
            mb_per_gb=self._whole("lambda", "mb_per_gb"),
        )

    def _instance(self, name: str) -> Instance:
        key = ("ec2", "instances", name)
        return Instance(
            name=name,
            vcpus=self._whole(*key, "vcpus"),
            memory_mib=self._whole(*key, "memory_mib"),
            gpus=self._whole(*key, "gpus", zero=True),
            usd_per_hour=self._number(*key, "usd_per_hour"),
        )

    def _get(self, *key: str) -> Any:
        value = self._data
        for part in key:
            if not isinstance(value, dict) or part not in value:
                raise PricesError(f"the price file {self._where} has no key {_name(key)!r}")
            value = value[part]
        return value

    def _table(self, *key: str) -> dict[str, Any]:
        value = self._get(*key)
        if not isinstance(value, dict) or not value:
            raise self._bad(key, value, "a non-empty table")
        return value

    def _text(self, *key: str) -> str:
        value = self._get(*key)
        if not isinstance(value, str) or not value:
            raise self._bad(key, value, "a non-empty string")
        return value

    def _number(self, *key: str, zero: bool = False) -> float:
        value = self._get(*key)
        valid = isinstance(value, int | float) and not isinstance(value, bool)
        if not valid or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise self._bad(key, value, "a number >= 0" if zero else "a number > 0")
        return float(value)

    def _whole(self, *key: str, zero: bool = False) -> int:
        value = self._get(*key)
        valid = isinstance(value, int) and not isinstance(value, bool)
        if not valid or value < 0 or (value == 0 and not zero):
            raise self._bad(key, value, "a whole number >= 0" if zero else "a whole number > 0")
        return int(value)

    def _bad(self, key: tuple[str, ...], value: Any, wanted: str) -> PricesError:
        return PricesError(
            f"the price file {self._where}: {_name(key)!r} must be {wanted},"
            f" not {json.dumps(value)}"
        )


def _name(key: tuple[str, ...]) -> str:
    """How a message names a key: ``ec2.instances["m5.large"].vcpus``."""
    return "".join(
        (f"[{json.dumps(part)}]" if "." in part else f".{part}") if index else part
        for index, part in enumerate(key)
    )
