"""benchmarks/width_depth.py runs end to end on its stand-in model and writes the issue's JSON shape.

Not an accuracy or timing test: the figures are the benchmark's business; here only the harness, its answer
extraction and its confidence interval are checked.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from width_depth import FinalAnswer, wilson  # noqa: E402


def test_simulated_run_writes_every_family_and_arm(tmp_path):
    out = tmp_path / "wd.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "width_depth.py"), "--simulate", "--n", "3",
                           "--budgets", "1,2", "--json", str(out)], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["model"] == "simulated"
    assert set(report["families"]) == {"gsm_symbolic", "basic_arithmetic", "shortest_path", "family_relationships",
                                       "maze"}
    for arms in report["families"].values():
        assert {"chain@1x", "chain@2x", "vote@2x", "staggered@2x", "refine_fixed_point", "refine_3"} <= set(arms)
        for row in arms.values():
            assert row["n"] == 3 and 0 <= row["accuracy"] <= 1 and row["tokens"] > 0
            assert row["ci95"][0] <= row["accuracy"] <= row["ci95"][1]
        assert arms["refine_3"]["rounds"] == 3  # a fixed count runs every round
    assert "| family | arm | n | accuracy | 95% CI |" in done.stdout


def _run(tmp_path, *flags):
    out = tmp_path / "wd.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "width_depth.py"), "--simulate", "--budgets", "1,2",
                           "--families", "gsm_symbolic,maze", "--json", str(out), *flags],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_a_results_file_lets_a_later_run_go_on_where_an_earlier_one_stopped(tmp_path):
    results = tmp_path / "wd.jsonl"
    first = _run(tmp_path, "--n", "2", "--results", str(results))
    lines = results.read_text().splitlines()
    arms = len(first["families"]["gsm_symbolic"])
    assert len(lines) == 2 * 2 * arms  # two families, two questions, every arm
    second = _run(tmp_path, "--n", "3", "--results", str(results))
    new = [json.loads(line) for line in results.read_text().splitlines()[len(lines):]]
    assert {row["i"] for row in new} == {2} and len(new) == 2 * arms  # only the third question ran
    for family, rows in second["families"].items():
        for arm, row in rows.items():
            assert row["n"] == 3, (family, arm)
            assert row["tokens"] >= first["families"][family][arm]["tokens"]
    other_seed = _run(tmp_path, "--n", "1", "--seed", "101", "--results", str(results))  # kept outcomes don't match
    assert all(row["n"] == 1 for rows in other_seed["families"].values() for row in rows.values())
    assert len(results.read_text().splitlines()) == len(lines) + len(new) + 2 * arms
    small = _run(tmp_path, "--n", "1", "--difficulty", "small", "--results", str(results))  # other questions
    assert small["details"]["difficulty"] == "small"
    assert all(row["n"] == 1 for rows in small["families"].values() for row in rows.values())
    assert len(results.read_text().splitlines()) == len(lines) + len(new) + 4 * arms


@pytest.mark.parametrize("family, reply, answer", [
    ("gsm_symbolic", "7 * 3 = 21, plus 4\nAnswer: 25 minutes", "25"),
    ("basic_arithmetic", "so the total is -1,234", "-1234"),
    ("shortest_path", "Go around the wall.\nAnswer: Right, up, up.", "right up up"),
    ("family_relationships", "Daniel is Logan's child.\n**Answer: Son**", "son"),
    ("family_relationships", "Answer: Daniel is Logan's son.", "son"),   # the measured run misread this as daniel
    ("family_relationships", "Answer: She is his mother-in-law", "mother-in-law"),
    ("maze", "Answer: 9 steps", "9"),
])
def test_final_answers_are_extracted_and_normalized(family, reply, answer):
    assert FinalAnswer(family).parse(reply) == answer


def test_wilson_interval():
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.237, abs=1e-3) and high == pytest.approx(0.763, abs=1e-3)
