"""The JSON report of every dataset the project reads equals the one recorded in `tests/data/golden/` (see
`tests/golden.py`): a change of structure changes no report byte, timings aside."""

from __future__ import annotations

import os

import pytest

from tests.golden import GOLDEN, ROOT, VARIANTS, datasets, golden_name, report_json


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dataset", datasets())
def test_report_is_the_recorded_one(dataset, variant, monkeypatch):
    monkeypatch.chdir(ROOT)
    recorded = GOLDEN / golden_name(dataset, variant)
    assert recorded.exists(), f"no recorded report for {dataset}: run `python -m tests.golden --write`"
    assert report_json(dataset, variant) == recorded.read_text(encoding="utf-8"), (
        f"the report of {dataset} ({variant}) changed; `diff` it against {os.path.relpath(recorded, ROOT)}")
