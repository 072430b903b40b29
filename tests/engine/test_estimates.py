"""The one moving average and the one ETA (studio/engine/estimates.py)."""

from __future__ import annotations

import math

import pytest

from studio.engine.estimates import ExponentialMean, remaining_seconds


def test_the_mean_is_debiased_from_the_first_value() -> None:
    mean = ExponentialMean(beta=0.8)
    assert math.isnan(mean.value)
    assert mean.add(5.0) == pytest.approx(5.0)  # not 0.2 * 5: the start does not pull towards zero
    values, avg = [5.0, 1.0, 3.0, 2.0], 0.0
    mean.reset()
    for k, v in enumerate(values, start=1):
        avg = 0.8 * avg + 0.2 * v
        assert mean.add(v) == pytest.approx(avg / (1 - 0.8**k))  # the textbook debiased EMA


def test_a_weight_per_value_for_unevenly_spaced_points() -> None:
    mean = ExponentialMean()
    mean.add(4.0, alpha=0.1)
    assert mean.add(0.0, alpha=1.0) == 0.0  # a full weight forgets the past
    mean.reset()
    assert mean.add(2.0, alpha=0.01) == pytest.approx(2.0)


def test_time_left_at_the_pace_so_far() -> None:
    assert remaining_seconds(10.0, 0.0) is None  # nothing done yet: no estimate
    assert remaining_seconds(10.0, 0.25) == pytest.approx(30.0)
    assert remaining_seconds(12.0, 2, 5) == pytest.approx(18.0)  # 2 of 5 epochs in 12 s
    assert remaining_seconds(5.0, 1.0) == 0.0
