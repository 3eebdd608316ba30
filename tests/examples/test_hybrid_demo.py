"""`make demo`'s script on scripted backends: the side-by-side table, and vLLM's logging kept off the screen."""

import subprocess
import sys
from pathlib import Path

import anyio

from plait import FunctionBackend

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import hybrid_demo  # noqa: E402


def test_demo_prints_both_arms_side_by_side():
    done = subprocess.run([sys.executable, "examples/hybrid_demo.py"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "answer" in line and "correct" in line)
    assert lines[header].split() == ["answer", "correct", "tokens", "seconds"]
    plain, hybrid = lines[header + 1].split(), lines[header + 2].split()
    assert plain[:3] == ["model", "alone", "(CoT)"] and plain[7] == "no"  # the stand-in model's wrong chain
    assert hybrid[:3] == ["plait", "hybrid", "(CSP)"] and hybrid[3:8] == ["Dan=1", "Ben=2", "Cleo=3", "Ada=4", "yes"]
    assert int(plain[8]) > 0 and int(hybrid[8]) > 0


def scripted(formulations):
    replies = iter(formulations)

    def model(request):
        if request.params.constraint is None:
            return "Dan=1, Ben=2, Cleo=3, Ada=4 by elimination."
        if "Regex" in type(request.params.constraint).__name__:
            return "Ada=4, Ben=2, Cleo=3, Dan=1"
        return next(replies)

    return FunctionBackend(model)


def test_the_hybrid_arm_repairs_and_counts_every_round():
    """A first formulation that is unsatisfiable: Formulate re-asks, and the table counts both rounds' tokens."""
    unsat = hybrid_demo._CSP + "\nDan > Ben"
    once = anyio.run(hybrid_demo.compare, scripted([hybrid_demo._CSP]))
    twice = anyio.run(hybrid_demo.compare, scripted([unsat, hybrid_demo._CSP]))
    assert [r["correct"] for r in once] == [r["correct"] for r in twice] == [True, True]
    assert twice[1]["answer"] == "Dan=1 Ben=2 Cleo=3 Ada=4"
    assert twice[1]["tokens"] > once[1]["tokens"] > 0
    assert twice[0]["tokens"] == once[0]["tokens"]


def test_a_model_that_never_formulates_gets_no_answer_and_the_table_says_why():
    rows = anyio.run(hybrid_demo.compare, FunctionBackend(lambda request: "I cannot do that."))
    assert rows[1]["answer"] == "-" and rows[1]["correct"] is False
    why = hybrid_demo.table(rows).splitlines()[-1]
    assert why.startswith("plait hybrid (CSP): invalid after 3 round(s): ")


def test_engine_output_goes_to_the_log_not_the_terminal(tmp_path):
    """What a spawned engine process writes to stdout and stderr (inherited fds 1 and 2) lands in --log."""
    script = (
        "import subprocess, sys; sys.path.insert(0, 'examples'); import hybrid_demo\n"
        "print('before', flush=True)\n"
        f"with hybrid_demo.engine_output_to({str(tmp_path / 'v.log')!r}):\n"
        "    print('INFO in process')\n"
        "    subprocess.run([sys.executable, '-c', 'import sys; print(\"INFO engine\"); sys.stderr.write(\"WARN\")'])\n"
        "print('table')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "before\ntable\n" and done.stderr == ""
    assert (tmp_path / "v.log").read_text() == "INFO in process\nINFO engine\nWARN"
