"""benchmarks/guards.py runs: its harness measures one cheap attack, and kills one that outlives its cap.

Not a timing test: whether a guard holds is the benchmark's business; here only the harness is checked.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "guards.py"


def _guards(*argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *argv], env=env, capture_output=True, text=True,
                          timeout=300)


def test_one_attack_is_measured_and_written_as_json(tmp_path):
    out = tmp_path / "guards.json"
    done = _guards("--only", "http_json_array", "--json", str(out))
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())["attacks"]
    assert list(figures) == ["http_json_array"]
    row = figures["http_json_array"]
    assert set(row) == {"outcome", "seconds", "peak_mb", "leftover_threads", "detail"}
    assert row["outcome"] in ("held", "failed") and "cap" not in row["detail"]  # it ran to its end
    assert row["seconds"] > 0 and row["peak_mb"] > 10 and isinstance(row["leftover_threads"], int)
    assert "http_json_array" in done.stdout and "guards held" in done.stdout


def test_an_attack_past_its_cap_is_killed_and_failed(tmp_path):
    out = tmp_path / "guards.json"
    done = _guards("--only", "http_slowloris", "--cap", "0.5", "--json", str(out))
    assert done.returncode == 0, done.stderr
    row = json.loads(out.read_text())["attacks"]["http_slowloris"]
    assert row == {"outcome": "failed", "seconds": 0.5, "peak_mb": row["peak_mb"], "leftover_threads": 0,
                   "detail": "killed after the 0.5s cap"}


def test_unknown_attack_is_refused():
    done = _guards("--only", "no_such_attack")
    assert done.returncode == 2 and "unknown attack(s) no_such_attack" in done.stderr


def test_no_schema_lets_a_looping_model_reach_max_tokens(tmp_path):
    # The scripted looping model repeats at the one place each schema lets it repeat longest; 64 variables with
    # 10-digit bounds once reached Formulate's 2,048-token limit (a cut reply, never a parse).
    out = tmp_path / "guards.json"
    done = _guards("--only", "looping_json", "--json", str(out))
    assert done.returncode == 0, done.stderr
    row = json.loads(out.read_text())["attacks"]["looping_json"]
    assert row["outcome"] == "held", row["detail"]
