"""benchmarks/staggered.py runs: its harness on the scripted stand-in (the figures on a model are the benchmark's).

Not a timing test: only the mechanics are checked. The stand-in's simulated prefix cache serves what a prompt
shares with earlier ones, so the staggered layout (hint after the shared part) must hit it and the hint-first
layout must not.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_simulated_run_writes_every_arm(tmp_path):
    out = tmp_path / "staggered.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "staggered.py"), "--simulate", "--n", "3",
                           "--json", str(out)], env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert (figures["model"], figures["n"], figures["k"]) == ("simulated", 3, 6)
    arms = figures["arms"]
    assert list(arms) == ["identical", "staggered", "variant_first"]
    assert all(row["questions"] == 3 and row["accuracy"] == 1.0 for row in arms.values())
    assert arms["identical"]["distinct_answers"] == 1.0 and arms["staggered"]["distinct_answers"] == 2.0
    assert arms["staggered"]["prompt_tokens"] == arms["variant_first"]["prompt_tokens"]
    assert arms["staggered"]["cache_hit_rate"] > 0.5 > arms["variant_first"]["cache_hit_rate"]
    assert "staggered" in done.stdout and "variant_first" in done.stdout
