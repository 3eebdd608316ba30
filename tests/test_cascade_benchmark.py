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
                           "--calibrate", "4", "--json", str(out)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert list(figures["arms"]) == ["small", "large", "cascade", "router"]
    for arm, row in figures["arms"].items():
        assert 0 <= row["accuracy"] <= 1 and row["wall_s"] >= 0 and row["failed_runs"] == 0, arm
        assert set(row["tokens"]) <= {"small", "large"} and all(n > 0 for n in row["tokens"].values()), arm
    assert set(figures["arms"]["small"]["tokens"]) == {"small"}
    assert set(figures["arms"]["large"]["tokens"]) == {"large"}
    assert figures["arms"]["cascade"]["tokens"]["small"] > 0 and "escalated" in figures["arms"]["cascade"]
    assert set(figures["router_calibration"]["choices"].values()) <= {"small", "large"}
    assert figures["setup"]["n"] == 6 and "| cascade |" in done.stdout
