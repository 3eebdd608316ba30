"""Durable runs over several named backends: recorded per name, replayed with none, fingerprinted with the names."""

import dataclasses

import pytest

from plait import (CheckpointError, CheckpointMismatchError, ConfigError, Graph, MemoryCheckpointer, Request,
                   RunContext, ScriptedBackend, SQLiteCheckpointer)
from plait.planners import ChainStep

pytestmark = pytest.mark.anyio


def echo(tag: str) -> ScriptedBackend:
    return ScriptedBackend(lambda request: f"{tag}:{request.prompt_text()}")  # identity "scripted" for both tags


def graph(verify_model: str = "large") -> Graph:
    g = Graph("two")

    @g.node(model="small")
    async def draft(q: str, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt=q))).text

    @g.node(model=verify_model)
    async def verify(draft: str, q: str, ctx: RunContext) -> str:
        same = (await ctx.generate(Request(prompt=q))).text  # the prompt draft sent, to the other backend
        also = (await ctx.generate(Request(prompt=q), model="small")).text
        return f"{draft} / {same} / {also}"

    g.chain(draft, verify)
    return g


EXPECTED = "S:q / L:q / S:q"


async def test_a_two_model_run_replays_with_no_backends(tmp_path):
    store = SQLiteCheckpointer(tmp_path / "runs.db")
    small, large = echo("S"), echo("L")
    first = await graph().run("q", backends={"small": small, "large": large}, checkpoint=store, run_id="r")
    assert first.output == EXPECTED
    replayed = await graph().run(None, checkpoint=store, run_id="r", replay=True)
    assert replayed.output == EXPECTED
    assert {m: dataclasses.astuple(u) for m, u in replayed.tokens_by_model.items()} == \
        {m: dataclasses.astuple(u) for m, u in first.tokens_by_model.items()}
    assert len(small.requests) == 2 and len(large.requests) == 1  # the replay asked neither


async def test_backends_with_the_same_identity_never_share_samples():
    """Both doubles report identity 'scripted': samples are keyed by name too, or large would get small's."""
    store = MemoryCheckpointer()
    assert echo("S").identity == echo("L").identity
    result = await graph().run("q", backends={"small": echo("S"), "large": echo("L")}, checkpoint=store, run_id="r")
    assert result.output == EXPECTED
    again = await graph().run("q", backends={"small": echo("S2"), "large": echo("L2")}, checkpoint=store,
                              run_id="r2")
    assert again.output == EXPECTED  # a new run of the same graph reuses each name's recorded samples


async def test_a_resumed_run_restores_finished_nodes_of_both_models():
    store = MemoryCheckpointer()
    failing = ScriptedBackend([RuntimeError("large is down")] * 3)
    with pytest.raises(Exception, match="large is down"):
        await graph().run("q", backends={"small": echo("S"), "large": failing}, checkpoint=store, run_id="r")
    small = echo("S")
    result = await graph().run("q", backends={"small": small, "large": echo("L")}, checkpoint=store, run_id="r")
    assert result.output == EXPECTED and result.nodes["draft"].restored == 1
    assert [r.tag for r in small.requests] == ["verify"]  # draft's came from the checkpoint


async def test_changing_a_nodes_model_changes_the_fingerprint():
    store = MemoryCheckpointer()
    backends = {"small": echo("S"), "large": echo("L")}
    await graph().run("q", backends=backends, checkpoint=store, run_id="r")
    with pytest.raises(CheckpointMismatchError, match="different nodes, edges or types"):
        await graph(verify_model="small").run("q", backends=backends, checkpoint=store, run_id="r")


async def test_the_run_keeps_each_names_identity_and_replay_checks_the_recorded_names():
    store = MemoryCheckpointer()
    await graph().run("q", backend=ScriptedBackend(["d"], model="tiny"),
                      backends={"small": echo("S"), "large": ScriptedBackend(["x"] * 2, model="big")},
                      checkpoint=store, run_id="r")
    assert store.get_run("r").model == '{"default":"tiny","small":"scripted","large":"big"}'
    solo = Graph("solo")
    solo.add(ChainStep("{q}", name="ask"))
    await solo.run("q", backend=ScriptedBackend(["a"], model="tiny"), checkpoint=store, run_id="solo")
    assert store.get_run("solo").model == "tiny"  # a run with only the default keeps what runs always kept
    store.put_run(dataclasses.replace(store.get_run("r"), model='{"default":"tiny","large":"big"}'))
    with pytest.raises(ConfigError, match="node 'draft' asks for model 'small', which this run lacks"):
        await graph().run(None, checkpoint=store, run_id="r", replay=True)


@pytest.mark.parametrize("column", ['{"small": 3}', '{"a b": "x"}', "{not json", "{}", '{"x": "' + "y" * 70000 + '"}'])
async def test_a_crafted_list_of_backends_is_a_checkpoint_error(column):
    store = MemoryCheckpointer()
    await graph().run("q", backends={"small": echo("S"), "large": echo("L")}, checkpoint=store, run_id="r")
    store.put_run(dataclasses.replace(store.get_run("r"), model=column))
    with pytest.raises(CheckpointError, match="run 'r' in the checkpoint has an unreadable list of backends") as info:
        await graph().run(None, checkpoint=store, run_id="r", replay=True)
    assert "\n" not in str(info.value)


async def test_ray_workers_refuse_named_backends(tmp_path):
    pytest.importorskip("ray")
    from plait import run_batch
    from plait.durable import RayExecutor

    with pytest.raises(ConfigError, match=r"named backends \(backends=\) run in this process"):
        await run_batch(graph(), ["q"], backends={"small": echo("S"), "large": echo("L")},
                        checkpoint=str(tmp_path / "c.db"), executor=RayExecutor(workers=1))


async def test_interrupts_asked_through_a_view_on_another_model_are_numbered_with_the_nodes_own():
    g = Graph("ask_twice")

    @g.node
    async def ask(q: str, ctx: RunContext) -> list:
        first = await ctx.using("large").interrupt(f"first about {q}")
        second = await ctx.interrupt("second")
        return [first, second]

    store, backends = MemoryCheckpointer(), {"large": echo("L")}
    paused = await g.run("q", backends=backends, checkpoint=store, run_id="r")
    assert [i["id"] for i in paused.interrupts] == ["ask#0.0"]
    paused = await g.run("q", backends=backends, checkpoint=store, run_id="r", resume={"ask#0.0": "yes"})
    assert [i["id"] for i in paused.interrupts] == ["ask#0.1"]  # not 0 again (which would reuse the answer)
    done = await g.run("q", backends=backends, checkpoint=store, run_id="r", resume={"ask#0.1": "no"})
    assert done.output == ["yes", "no"]
