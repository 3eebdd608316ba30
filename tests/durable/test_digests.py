"""Digests are over canonical JSON: the same in every process, whatever PYTHONHASHSEED orders sets by."""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def _python(code_or_script: list[str], seed: int) -> str:
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    done = subprocess.run([sys.executable, *code_or_script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_sets_digest_the_same_in_processes_with_different_hash_seeds():
    code = ("from plait.durable._codec import digest; "
            "print(digest({'tags': {f'tag-{i}' for i in range(50)}, 'pair': frozenset({'a', 'b'})}).hex())")
    first, second = _python(["-c", code], 1), _python(["-c", code], 2)
    order = "print(list({f'tag-{i}' for i in range(50)}))"
    assert _python(["-c", order], 1) != _python(["-c", order], 2)  # the seeds do order the set differently
    assert first == second


def test_canonical_json_sorts_keys_and_has_no_whitespace():
    from plait.durable._codec import canonical, digest

    assert canonical({"b": 1, "a": [1.5, None, True], "c": {"y", "x"}}) == b'{"a":[1.5,null,true],"b":1,"c":["x","y"]}'
    assert digest("topic") == b'"topic"' and len(digest("x" * 100)) == 16
    assert digest({1: "a"}) != digest({"1": "a"})


def test_the_readme_example_resumed_in_another_process_does_not_run_its_draft_again(tmp_path):
    db = str(tmp_path / "runs.db")
    assert json.loads(_python([str(HERE / "topic_pipeline.py"), db, "fail"], 1)) == ["draft", "publish"]
    assert json.loads(_python([str(HERE / "topic_pipeline.py"), db, "resume"], 2)) == ["publish"]
