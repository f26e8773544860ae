"""The cases of the benchmark, by number; each measures one thing on a started ``Bench``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.cases.scripts import case_6, case_7
from harness.cases.startup import case_1, case_2, case_3
from harness.cases.transfers import case_4, case_5

if TYPE_CHECKING:
    from harness.session import Bench

CASES: dict[int, Callable[[Bench], None]] = {
    1: case_1,
    2: case_2,
    3: case_3,
    4: case_4,
    5: case_5,
    6: case_6,
    7: case_7,
}
