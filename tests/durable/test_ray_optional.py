"""Ray is optional: without it local batches are unchanged and asking for Ray names the extra to install.

Each case runs in a subprocess where ``import ray`` fails, whether or not Ray is installed here.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TARGET = f"{HERE / 'batch_pipeline.py'}:graph"
NO_RAY = "import sys\nsys.modules['ray'] = None  # `import ray` raises ImportError\n"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_RAY + code], capture_output=True, text=True, timeout=120)


def test_without_ray_the_executor_names_the_extra_and_a_local_batch_runs(tmp_path):
    code = f"""
import anyio
sys.path.insert(0, {str(HERE)!r})
import batch_pipeline as p
from plait import run_batch
from plait.durable import RayExecutor
try:
    RayExecutor(workers=2)
except ImportError as exc:
    print("refused:", exc)
result = anyio.run(lambda: run_batch(p.graph, [{{"x": x}} for x in range(5)], backend=p.make_backend(),
                                     checkpoint={str(tmp_path / 'runs.db')!r}))
print(result.summary())
"""
    done = _python(code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "refused: RayExecutor needs Ray, which is not installed: pip install 'plait[ray]'"
    assert lines[1].startswith("batch: 5 inputs, 5 ok, 0 failed")


def _cli(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"x": x}) + "\n" for x in range(3)))
    argv = ["run", TARGET, "--inputs", str(inputs), *flags]
    return _python(f"from plait.cli import main\nsys.exit(main({argv!r}))")


def test_cli_without_ray_says_what_to_install(tmp_path):
    done = _cli(tmp_path, "--checkpoint", str(tmp_path / "runs.db"), "--ray", "local", "--workers", "2")
    assert done.returncode == 2
    assert done.stderr == "plait: error: RayExecutor needs Ray, which is not installed: pip install 'plait[ray]'\n"
    assert not (tmp_path / "runs.db").exists() and done.stdout == ""


@pytest.mark.parametrize("flags, message", [
    (["--workers", "2"], "--ray and --workers spread a batch over Ray workers sharing a checkpoint: give --inputs "
                         "FILE.jsonl, --checkpoint DB and --ray ADDRESS"),
    (["--ray", "local"], "--ray and --workers spread a batch over Ray workers sharing a checkpoint"),
    (["--ray", "local", "--checkpoint", "runs.db", "--workers", "0"], "--workers must be >= 1, got 0"),
])
def test_cli_ray_flags_are_checked_before_anything_runs(tmp_path, flags, message):
    flags = [str(tmp_path / f) if f == "runs.db" else f for f in flags]
    done = _cli(tmp_path, *flags)
    assert done.returncode == 2
    assert done.stderr.startswith(f"plait: error: {message}") and len(done.stderr.splitlines()) == 1


def test_missing_unpickles_as_itself():
    """Graphs are pickled to Ray workers: a node's unset fallback must stay unset (a copy of MISSING was 'set')."""
    import pickle

    from plait.orchestrator._node import MISSING

    assert pickle.loads(pickle.dumps(MISSING)) is MISSING


def test_workers_walk_the_inputs_from_evenly_spaced_offsets():
    from plait.durable._ray import _rotated

    pending = [3, 4, 5, 6, 7, 8, 9]
    walks = [_rotated(pending, k, 3) for k in range(3)]
    assert walks == [[3, 4, 5, 6, 7, 8, 9], [5, 6, 7, 8, 9, 3, 4], [7, 8, 9, 3, 4, 5, 6]]
    assert _rotated([1], 1, 2) == [1]
