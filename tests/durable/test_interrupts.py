"""Human-in-the-loop interrupts: a run stops for a question and resumes with the answer, however it is given."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from interrupt_graphs import approval, two_questions

from plait import Graph, MemoryCheckpointer, NodeFailedError, RunContext

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


async def test_one_interrupt_stops_the_run_and_resume_continues_it(tmp_path):
    db, calls = str(tmp_path / "runs.db"), []
    first = await approval(calls).run("cats", checkpoint=db, run_id="r1")
    assert first.status == "interrupted"
    assert first.interrupts == [{"id": "review#0.0", "node": "review", "question": {"publish?": "a post about cats"}}]
    assert first.nodes["review"].status == "interrupted" and first.nodes["publish"].status == "skipped"
    assert calls == ["draft", "review"]

    calls.clear()
    done = await approval(calls).run(checkpoint=db, run_id="r1", resume={"review#0.0": True})
    assert done.status == "ok" and done.output == "a post about cats" and done.interrupts == []
    assert calls == ["review", "answered True", "publish"]  # draft was restored, not run again
    assert done.nodes["draft"].restored == 1


async def test_parallel_interrupts_are_all_collected_and_answered_one_at_a_time_in_any_order():
    store, calls = MemoryCheckpointer(), []
    first = await two_questions(calls).run(10, checkpoint=store, run_id="q")
    assert first.status == "interrupted"
    pending = sorted((i["id"], i["question"]) for i in first.interrupts)
    assert pending == [("left#0.0", "left?"), ("right#0.0", "right?")]

    second = await two_questions(calls).run(checkpoint=store, run_id="q", resume={"right#0.0": 3})
    assert second.status == "interrupted"
    assert [i["id"] for i in second.interrupts] == ["left#0.0"]  # the right answer is recorded: not asked again

    calls.clear()
    third = await two_questions(calls).run(checkpoint=store, run_id="q", resume={"left#0.0": 5})
    assert third.status == "ok" and third.output == [15, 30]
    assert calls == ["left", "join"]  # right was committed by the second run


async def test_parallel_interrupts_answered_all_at_once():
    store = MemoryCheckpointer()
    await two_questions([]).run(2, checkpoint=store, run_id="q")
    done = await two_questions([]).run(checkpoint=store, run_id="q", resume={"right#0.0": 7, "left#0.0": 1})
    assert done.status == "ok" and done.output == [3, 14]


async def test_a_wrong_typed_answer_is_a_one_line_error_naming_the_interrupt():
    store = MemoryCheckpointer()
    await two_questions([]).run(2, checkpoint=store, run_id="q")
    with pytest.raises(NodeFailedError) as info:
        await two_questions([]).run(checkpoint=store, run_id="q", resume={"left#0.0": "lots", "right#0.0": 1})
    message = str(info.value)
    assert "'left#0.0'" in message and "not a valid int" in message and "\n" not in message


async def test_without_a_checkpoint_interrupt_is_a_clear_error():
    with pytest.raises(NodeFailedError, match=r"ctx.interrupt\(\), which needs a checkpoint.*checkpoint="):
        await approval([]).run("cats")


async def test_resume_needs_a_checkpoint_and_a_run_id():
    with pytest.raises(ValueError, match="resume= needs checkpoint= and run_id="):
        await approval([]).run("cats", resume={"review#0.0": True})
    with pytest.raises(ValueError, match="resume= must be a dict"):
        await approval([]).run("cats", checkpoint=MemoryCheckpointer(), run_id="r", resume=["yes"])


@pytest.mark.parametrize("wrong", ["reveiw#0.0", "review", "review#0", "review#x.0", "#0.0"])
async def test_an_answer_to_an_interrupt_no_node_can_ask_is_refused_before_anything_runs(wrong):
    store, calls = MemoryCheckpointer(), []
    await approval(calls).run("cats", checkpoint=store, run_id="r")
    calls.clear()
    with pytest.raises(ValueError, match=f"resume= answers interrupt '{wrong}', which no node of this graph can ask"):
        await approval(calls).run(checkpoint=store, run_id="r", resume={wrong: True})
    assert calls == []


async def test_an_interrupt_inside_a_subgraph_stops_the_outer_node_without_committing_it():
    store, calls = MemoryCheckpointer(), []
    outer = Graph("outer")
    outer.add(approval(calls), name="inner")
    first = await outer.run({"topic": "owls"}, checkpoint=store, run_id="o")
    assert first.status == "interrupted" and [i["id"] for i in first.interrupts] == ["inner/review#0.0"]
    done = await outer.run(checkpoint=store, run_id="o", resume={"inner/review#0.0": False})
    assert done.status == "ok" and done.output == "withheld"


def test_an_answer_recorded_before_a_crash_is_seen_by_the_next_resume(tmp_path):
    import anyio

    db, calls = str(tmp_path / "runs.db"), []
    first = anyio.run(lambda: approval(calls).run("cats", checkpoint=db, run_id="r"))
    assert first.status == "interrupted"
    marker = tmp_path / "answered"
    env = {**os.environ, "PLAIT_TEST_MARKER": str(marker), "PYTHONPATH": os.pathsep.join(
        [str(HERE), str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(HERE / "interrupt_graphs.py"), db, "r", "false"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the resumed child never got its answer"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)  # killed after the answer was recorded, before review committed
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    calls.clear()
    again = anyio.run(lambda: approval(calls).run(checkpoint=db, run_id="r"))  # no answers given this time
    assert again.status == "ok" and again.output == "withheld" and again.interrupts == []
    assert calls == ["review", "answered False", "publish"]


async def test_replay_of_an_interrupted_then_resumed_run_needs_no_backend_and_asks_nothing():
    store, calls = MemoryCheckpointer(), []
    await two_questions(calls).run(4, checkpoint=store, run_id="q")
    await two_questions(calls).run(checkpoint=store, run_id="q", resume={"left#0.0": 1})
    await two_questions(calls).run(checkpoint=store, run_id="q", resume={"right#0.0": 2})
    replayed = await two_questions(calls).run(checkpoint=store, run_id="q", replay=True)
    assert replayed.status == "ok" and replayed.output == [5, 8] and replayed.interrupts == []


async def test_an_interrupt_id_counts_interrupts_within_one_activation():
    g = Graph("form")

    @g.node
    async def ask(ctx: RunContext) -> str:
        name = await ctx.interrupt("name?", returns=str)
        age = await ctx.interrupt("age?", returns=int)
        return f"{name} {age}"

    store = MemoryCheckpointer()
    first = await g.run(None, checkpoint=store, run_id="f")
    assert [i["id"] for i in first.interrupts] == ["ask#0.0"]
    second = await g.run(None, checkpoint=store, run_id="f", resume={"ask#0.0": "Ada"})
    assert [(i["id"], i["question"]) for i in second.interrupts] == [("ask#0.1", "age?")]
    third = await g.run(None, checkpoint=store, run_id="f", resume={"ask#0.1": 36})
    assert third.output == "Ada 36"


CLI_MODULE = '''
from plait import Graph, RunContext

graph = Graph("gate")

@graph.node
async def gate(x: int, ctx: RunContext) -> int:
    return x + await ctx.interrupt({"add": "how much?"}, returns=int)
'''


def _cli(capsys, *argv):
    from plait.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_exits_3_with_the_pending_interrupts_and_resumes_with_answers(capsys, tmp_path):
    module = tmp_path / "gate.py"
    module.write_text(CLI_MODULE)
    db, target = tmp_path / "runs.db", f"{module}:graph"
    code, out, err = _cli(capsys, "run", target, "--input", "1", "--checkpoint", db, "--run-id", "g")
    assert code == 3 and json.loads(out) == [{"id": "gate#0.0", "node": "gate", "question": {"add": "how much?"}}]
    assert "--resume-with" in err
    resume = ["--checkpoint", db, "--run-id", "g", "--resume-with"]
    code, out, err = _cli(capsys, "run", target, *resume, '{"gate#0.0": "x"}')
    assert code == 1 and "'gate#0.0'" in err and "not a valid int" in err
    code, out, _ = _cli(capsys, "run", target, *resume, '{"gate#0.0": 41}')
    assert code == 0 and out.strip() == "42"


@pytest.mark.parametrize("extra, message", [
    (["--resume-with", "{}"], "--resume-with answers the interrupts of one run"),
    (["--checkpoint", "DB", "--run-id", "g", "--resume-with", "{nope"], "--resume-with is not valid JSON"),
    (["--checkpoint", "DB", "--run-id", "g", "--resume-with", "[1]"], "must be a JSON object"),
])
def test_resume_with_usage_errors_exit_2_with_one_line(capsys, tmp_path, extra, message):
    module = tmp_path / "gate.py"
    module.write_text(CLI_MODULE)
    extra = [str(tmp_path / "runs.db") if a == "DB" else a for a in extra]
    code, _, err = _cli(capsys, "run", f"{module}:graph", "--input", "1", *extra)
    assert code == 2 and message in err and err.count("\n") == 1
