"""benchmarks/cascade.py runs end to end on its seeded stand-in models and writes the issue's JSON format.

Not a measurement: the figures of the stand-ins say nothing about real models; here only the harness is checked.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("reasoning_gym")

ROOT = Path(__file__).resolve().parent.parent


def test_every_arm_reports_accuracy_tokens_per_model_and_wall_time(tmp_path):
    out = tmp_path / "cascade.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cascade.py"), "--simulate", "--n", "6",
                           "--calibrate", "4", "--sweep", "--json", str(out)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert list(figures["arms"]) == ["small", "large", "small_vote", "cascade", "router"]
    for arm, row in figures["arms"].items():
        assert 0 <= row["accuracy"] <= 1 and row["wall_s"] >= 0 and row["failed_runs"] == 0, arm
        assert set(row["tokens"]) <= {"small", "large"} and all(n > 0 for n in row["tokens"].values()), arm
    assert set(figures["arms"]["small"]["tokens"]) == {"small"}
    assert set(figures["arms"]["large"]["tokens"]) == {"large"}
    assert figures["arms"]["cascade"]["tokens"]["small"] > 0 and "escalated" in figures["arms"]["cascade"]
    calibration = figures["calibration"]
    assert set(calibration["choices"].values()) <= {"small", "large"}
    assert calibration["threshold"] in {0.2, 0.4, 0.6, 0.8, 1.0}  # learned: one of k=5's agreement levels
    assert calibration["small_vote"]["tokens"]["small"] > 0
    assert figures["setup"]["n"] == 6 and "| cascade |" in done.stdout
    sweep = figures["sweep"]  # one row per agreement level of k=5, escalations falling as the threshold drops
    assert [row["threshold"] for row in sweep] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert [row["escalated"] for row in sweep] == sorted(row["escalated"] for row in sweep)
    assert sweep[-1]["large_tokens"] <= figures["arms"]["large"]["tokens"]["large"]


def _learn_threshold():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from cascade import learn_threshold
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return learn_threshold


def test_the_learned_threshold_is_the_lowest_that_keeps_the_large_models_accuracy():
    learn_threshold = _learn_threshold()
    # (agreement of the small vote, its score) per item; the large model's score per item
    votes = [(1.0, 1.0), (0.75, 1.0), (0.5, 0.0), (0.25, 0.0)]
    large = [1.0, 1.0, 1.0, 0.0]
    assert learn_threshold(4, votes, large, max_loss=0.0) == 0.75  # at 0.5 item 3 would be lost
    assert learn_threshold(4, votes, large, max_loss=0.25) == 0.25  # losing item 3 is allowed: accept every vote
    # no level keeps it: only unanimous votes are accepted
    assert learn_threshold(4, [(1.0, 0.0)] * 4, [1.0] * 4, max_loss=0.0) == 1.0
