"""The status bar's latency line: every stage, crop refinement shown as one "crops" stage."""

import pytest

from pose_app.gui.stats import LatencyMeter


def test_latency_summary_folds_the_crop_stages_into_one_and_totals_everything():
    meter = LatencyMeter(smoothing=0.5)
    meter.add({"queue": 0.001, "preprocess": 0.002, "inference": 0.010, "decode": 0.001,
               "crop_preprocess": 0.001, "crop_inference": 0.004, "crop_decode": 0.001, "track": 0.0})
    assert meter.summary() == "latency 20 ms (queue 1, preprocess 2, inference 10, decode 1, crops 6, track 0)"
    # A frame on tracked crops only reports 0 for the full-frame stages: the averages follow.
    meter.add({"queue": 0.001, "preprocess": 0.0, "inference": 0.0, "decode": 0.0,
               "crop_preprocess": 0.001, "crop_inference": 0.004, "crop_decode": 0.001, "track": 0.0})
    assert meter.seconds["inference"] == pytest.approx(0.005)
    assert meter.total() == pytest.approx(0.0135)  # (20 + 7) / 2 ms
