"""Fixed-point loops: graph.loop(until="fixed_point" | halt=...) with scripted outputs that converge, oscillate or
never settle; the record and events say why each loop stopped; durable replay and the viewer take such runs."""

import json

import pytest

from plait import ConfigError, Graph, Request, Route, RunContext, ScriptedBackend
from plait.errors import LoopLimitError, NodeFailedError
from plait.orchestrator import LoopStopped
from plait.orchestrator._halting import token_jaccard

pytestmark = pytest.mark.anyio


def _revising(outputs: list, **loop) -> Graph:
    """draft -> revise, looping on revise until a fixed point; revise's outputs come from ``outputs`` in order."""
    g = Graph("revising")
    script = iter(outputs)

    @g.node
    def draft(topic: str) -> str:
        return f"draft about {topic}"

    @g.node
    def revise(text: str) -> str:
        return next(script)

    @g.node
    def done(final: str) -> str:
        return final

    g.edge(draft, revise)
    g.loop(revise, back_to=revise, param="text", exit=done, exit_param="final", **loop)
    return g


def _stops(result) -> list[tuple[str, int]]:
    return [(e.reason, e.iterations) for e in result.events if isinstance(e, LoopStopped)]


async def test_converging_outputs_stop_at_the_first_repeat():
    result = await _revising(["a", "b", "c", "c", "never read"], until="fixed_point", max_iterations=10).run("x")
    assert result.output == "c"
    assert result.nodes["revise"].outputs == ["a", "b", "c", "c"]
    assert result.nodes["revise"].loop_stops == ["fixed_point"]
    assert result.nodes["revise"].routes == ["revise", "revise", "revise", "done"]
    assert _stops(result) == [("fixed_point", 3)]


async def test_the_first_pass_is_compared_with_the_value_that_entered_the_loop():
    result = await _revising(["draft about x", "never read"], until="fixed_point", max_iterations=5).run("x")
    assert result.output == "draft about x" and result.nodes["revise"].runs == 1
    assert _stops(result) == [("fixed_point", 0)]


@pytest.mark.parametrize("outputs, name", [(["a", "b"] * 10, "oscillating"),
                                           ([f"v{i}" for i in range(20)], "never settling")])
async def test_outputs_that_never_repeat_consecutively_run_to_the_limit(outputs, name):
    result = await _revising(outputs, until="fixed_point", max_iterations=4, on_limit="exit").run("x")
    assert result.nodes["revise"].runs == 5  # the first pass and 4 loop-backs
    assert result.output == outputs[4]
    assert result.nodes["revise"].loop_stops == ["limit"] and _stops(result) == [("limit", 4)]


async def test_limit_with_on_limit_raise_records_why_before_raising():
    with pytest.raises(LoopLimitError) as info:
        await _revising(["a", "b"] * 10, until="fixed_point", max_iterations=2).run("x")
    assert info.value.partial.nodes["revise"].loop_stops == ["limit"]
    assert _stops(info.value.partial) == [("limit", 2)]


async def test_normalize_decides_what_counts_as_the_same():
    outputs = ["Answer: 41", "answer:42", "ANSWER: 42 ", "unused"]
    result = await _revising(outputs, until="fixed_point", max_iterations=9,
                             normalize=lambda s: s.lower().replace(" ", "")).run("x")
    assert result.output == "ANSWER: 42 " and result.nodes["revise"].runs == 3


async def test_similarity_threshold_is_token_jaccard():
    outputs = ["the cat sat on the mat", "the cat sat on a mat", "a cat sat on the mat", "unused"]
    # tokens {the,cat,sat,on,mat} vs {the,cat,sat,on,a,mat}: 5/6; then the same set again: 1.0
    result = await _revising(outputs, until="fixed_point", similarity=0.9, max_iterations=9).run("x")
    assert result.nodes["revise"].runs == 3 and result.output == "a cat sat on the mat"
    looser = await _revising(outputs, until="fixed_point", similarity=0.8, max_iterations=9).run("x")
    assert looser.nodes["revise"].runs == 2


def test_token_jaccard():
    assert token_jaccard("", "") == 1.0
    assert token_jaccard("a b", "b a a") == 1.0
    assert token_jaccard("x = 4.", "x = 5.") == pytest.approx(3 / 5)  # {x, =, ., 4} vs {x, =, ., 5}
    assert token_jaccard("Yes", "no") == 0.0


async def test_halt_callable_gets_previous_and_current():
    """Newton's iteration for sqrt(2) halts once a step moves less than 1e-12."""
    g = Graph("newton")
    seen = []

    @g.node
    def start(x: float) -> float:
        return x

    @g.node
    def step(guess: float) -> float:
        return (guess + 2 / guess) / 2

    def close(previous: float, current: float) -> bool:
        seen.append((previous, current))
        return abs(previous - current) < 1e-12

    g.edge(start, step)
    g.loop(step, back_to=step, param="guess", halt=close, max_iterations=50)
    result = await g.run(1.0)
    assert result.output == pytest.approx(2 ** 0.5, abs=1e-12)
    assert seen[0] == (1.0, 1.5) and len(seen) == result.nodes["step"].runs < 10
    assert result.nodes["step"].loop_stops == ["fixed_point"]


async def test_an_exit_route_is_recorded_as_exit_and_a_route_back_still_halts():
    g = Graph("routes")
    script = iter([Route("revise", "a"), Route("revise", "a"), Route("done", "b")])

    @g.node
    def revise(text: str = "") -> Route[str]:
        return next(script)

    @g.node
    def done(final: str) -> str:
        return final

    g.loop(revise, back_to=revise, param="text", exit=done, exit_param="final", until="fixed_point",
           max_iterations=5)
    result = await g.run()
    assert result.output == "a" and result.nodes["revise"].loop_stops == ["fixed_point"]

    script = iter([Route("revise", "a"), Route("done", "b")])
    result = await g.run()
    assert result.output == "b" and result.nodes["revise"].loop_stops == ["exit"] and _stops(result) == [("exit", 1)]


async def test_a_fixed_point_loop_without_exit_ends_on_its_last_value():
    g = Graph("no_exit")

    @g.node
    def start(x: int) -> int:
        return x

    @g.node
    def halve(n: int) -> int:
        return n // 2

    g.edge(start, halve)
    g.loop(halve, back_to=halve, param="n", until="fixed_point", max_iterations=20)
    result = await g.run(100)
    assert result.output == 0 and result.nodes["halve"].outputs == [50, 25, 12, 6, 3, 1, 0, 0]
    assert "loop ≤20 until fixed point" in g.to_mermaid()


async def test_a_nested_loop_gets_its_whole_bound_each_time_it_is_entered():
    """The inner loop stops by its limit on every outer pass; its count starts again each time."""
    g = Graph("nested")

    @g.node
    def outer(n: int, again: int = 0) -> int:
        return n + again

    @g.node
    def inner(value: int) -> int:
        return value + 1  # never settles

    @g.node
    def check(inner: int) -> Route[int]:
        return Route("outer", inner) if inner < 20 else Route("end", inner)

    @g.node
    def end(check: int) -> int:
        return check

    g.edge(outer, inner, param="value")
    g.loop(inner, back_to=inner, param="value", exit=check, exit_param="inner", until="fixed_point",
           max_iterations=2, on_limit="exit")
    g.loop(check, back_to=outer, param="again", exit=end, max_iterations=5)
    result = await g.run(1)
    # inner runs 3 times (2 loop-backs) per outer pass: 1 -> 4, 5 -> 8, 9 -> 12, 13 -> 16, 17 -> 20 -> end
    assert result.output == 20
    assert result.nodes["inner"].loop_stops == ["limit"] * 5 and result.nodes["inner"].runs == 15
    assert _stops(result) == [("limit", 2), ("limit", 2), ("limit", 2), ("limit", 2), ("limit", 2), ("exit", 4)]


async def test_a_halt_rule_that_raises_fails_the_loop_source():
    def broken(previous, current):
        raise ZeroDivisionError("no")

    with pytest.raises(NodeFailedError, match="revise.*ZeroDivisionError"):
        await _revising(["a", "b"], halt=broken, max_iterations=3).run("x")


@pytest.mark.parametrize("options, message", [
    ({"until": "converged"}, "until must be 'fixed_point'"),
    ({"normalize": str.lower}, "only apply with until='fixed_point'"),
    ({"until": "fixed_point", "similarity": 1.5}, "token-Jaccard threshold in \\(0, 1\\], got 1.5"),
    ({"until": "fixed_point", "similarity": True}, "threshold"),
    ({"until": "fixed_point", "normalize": "lower"}, "normalize= must be a callable"),
    ({"halt": lambda p, c: True, "until": "fixed_point"}, "halt= is a whole rule"),
    ({"halt": 3}, "halt= must be a callable"),
])
def test_bad_halting_options_are_config_errors_naming_the_loop(options, message):
    with pytest.raises(ConfigError, match=f"loop 'revise' -> 'revise': .*{message}"):
        _revising([], max_iterations=3, **options)


def _model_loop() -> Graph:
    """A loop whose body calls the model: the model rewrites its answer until it stops changing."""
    g = Graph("model_loop")

    @g.node
    async def answer(question: str, previous: str = "", ctx: RunContext = None) -> str:
        reply = await ctx.generate(Request(prompt=f"Q: {question}\nPrevious: {previous}\nA:"))
        return reply.text.strip()

    g.loop(answer, back_to=answer, param="previous", until="fixed_point", max_iterations=6)
    return g


async def test_a_recorded_fixed_point_run_replays_without_a_backend(tmp_path):
    path = tmp_path / "runs.db"
    backend = ScriptedBackend(["41", "42", " 42", "43"])
    recorded = await _model_loop().run("6 * 7?", backend=backend, checkpoint=path, run_id="r")
    assert recorded.output == "42" and len(backend.requests) == 3
    replayed = await _model_loop().run(checkpoint=path, run_id="r", replay=True)
    assert replayed.output == "42" and replayed.nodes["answer"].restored == 0
    assert replayed.nodes["answer"].loop_stops == ["fixed_point"] and _stops(replayed) == [("fixed_point", 2)]


def test_the_viewer_draws_a_fixed_point_run_from_its_trace_and_its_checkpoint(tmp_path):
    from plait import write_view

    trace, path = tmp_path / "run.jsonl", tmp_path / "runs.db"
    _model_loop().run_sync("6 * 7?", backend=ScriptedBackend(["41", "42", "42"]), trace=trace,
                           checkpoint=path, run_id="r")
    assert [e["reason"] for e in map(json.loads, trace.read_text().splitlines())
            if e["kind"] == "loop_stopped"] == ["fixed_point"]
    for source, extra in ((trace, {}), (path, {"graph": _model_loop(), "run_id": "r"})):
        page = write_view(source, tmp_path / "page.html", **extra).read_text()
        start = page.index('id="plait-data">') + len('id="plait-data">')
        data = json.loads(page[start:page.index("</script>", start)])
        assert data["run"]["status"] == "ok" and data["nodes"]["answer"]["runs"] == 3
