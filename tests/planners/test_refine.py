"""Refine: draft -> critique -> revise on the fixed-point loop, with scripted replies that settle, oscillate or never
settle; its result says how many rounds ran and why it stopped; prompts share the step's prefix; it replays."""

import pytest

from plait import ChainStep, ConfigError, Graph, Refine, ScriptedBackend
from plait.errors import NodeFailedError
from plait.orchestrator import LoopStopped
from plait.planners import NumberParser, RefineResult, TextParser

pytestmark = pytest.mark.anyio


def solve() -> ChainStep:
    return ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), name="solve")


async def refine(replies: list[str], **options) -> tuple[RefineResult, ScriptedBackend, object]:
    """Run a Refine node on "6 * 7?"; replies alternate draft/revision texts with critiques."""
    g = Graph("refining")
    g.add(Refine(solve(), name="refine", **options))
    backend = ScriptedBackend(replies)
    result = await g.run({"question": "6 * 7?"}, backend=backend)
    return result.output, backend, result


async def test_it_stops_at_the_first_revision_that_changes_nothing():
    replies = ["6 * 7 = 41", "41 is wrong", "so it is 42", "right", "42 again", "unused"]
    out, backend, run = await refine(replies, max_iterations=5)
    assert (out.answer, out.drafts, out.rounds, out.stopped) == (42, [41, 42, 42], 2, "fixed_point")
    assert out.critiques == ["41 is wrong", "right"]
    assert len(backend.requests) == 5  # the draft, then a critique and a revision per round
    assert out.tokens == run.tokens.total > 0
    assert [(e.reason, e.iterations) for e in run.events if isinstance(e, LoopStopped)] == [("fixed_point", 1)]


async def test_a_first_revision_equal_to_the_draft_ends_after_one_round():
    out, backend, _ = await refine(["it is 42", "looks right", "42"], max_iterations=3)
    assert (out.answer, out.rounds, out.stopped) == (42, 1, "fixed_point") and len(backend.requests) == 3


async def test_oscillating_answers_run_max_iterations_rounds():
    replies = ["41", "no"] + ["42", "no", "41", "no"] * 3
    out, backend, _ = await refine(replies, max_iterations=4)
    assert (out.drafts, out.rounds, out.stopped) == ([41, 42, 41, 42, 41], 4, "limit")
    assert len(backend.requests) == 1 + 2 * 4


async def test_until_none_runs_every_round_even_when_settled():
    out, backend, _ = await refine(["42", "ok"] * 4, max_iterations=3, until=None)
    assert (out.drafts, out.rounds, out.stopped) == ([42, 42, 42, 42], 3, "limit") and len(backend.requests) == 7


async def test_one_round_needs_no_loop():
    out, backend, _ = await refine(["41", "wrong", "42"], max_iterations=1)
    assert (out.answer, out.rounds, out.stopped) == (42, 1, "limit") and len(backend.requests) == 3


async def test_normalize_and_halt_compare_the_parsed_answers():
    step = ChainStep("Capital of {country}?", TextParser(), name="capital")
    g = Graph("capitals")
    g.add(Refine(step, normalize=lambda text: text.strip(" .").lower(), name="refine"))
    out = (await g.run({"country": "France"}, backend=ScriptedBackend(["Lyon", "no", "Paris.", "ok", " paris"]))).output
    assert (out.answer, out.rounds, out.stopped) == ("paris", 2, "fixed_point")  # TextParser strips

    seen = []
    close = lambda previous, current: seen.append((previous, current)) or abs(previous - current) <= 1  # noqa: E731
    out, _, _ = await refine(["40", "low", "43", "low", "44", "unused"], halt=close)
    assert (out.answer, out.rounds, out.stopped) == (44, 2, "fixed_point") and seen == [(40, 43), (43, 44)]


async def test_critique_and_revise_prompts_extend_the_steps_prompt():
    _, backend, _ = await refine(["41", "wrong", "42", "ok", "42"])
    first = backend.requests[0].prompt
    assert first == "Q: 6 * 7?\nA:"
    assert all(r.prompt.startswith(first) for r in backend.requests)  # one shared prefix for the prefix cache
    assert "41\n\nCheck the answer above" in backend.requests[1].prompt
    assert backend.requests[2].prompt.endswith("A check of this answer said:\nwrong\n\nWrite the answer again, "
                                               "correcting any mistake, and end it the same way.\nAnswer:")


async def test_answer_only_wires_into_a_graph_and_custom_templates_are_used():
    g = Graph("wired")
    refine_node = g.add(Refine(solve(), answer_only=True, critique="{draft}\nReview:", revise="Fix per {critique}:",
                               name="refine"))

    @g.node
    def double(refine: int) -> int:
        return refine * 2

    g.edge(refine_node, double)
    backend = ScriptedBackend(["7", "fine", "7"])
    assert (await g.run({"question": "3 + 4?"}, backend=backend)).output == 14
    assert backend.requests[1].prompt == "Q: 3 + 4?\nA:7\nReview:"
    assert backend.requests[2].prompt == "Q: 3 + 4?\nA:Fix per fine:"


async def test_chat_steps_get_the_critique_as_a_further_message():
    step = ChainStep([("system", "Be brief."), ("user", "{question}")], NumberParser(int, constrain=False))
    g = Graph("chat")
    g.add(Refine(step, name="refine"))
    backend = ScriptedBackend(["42", "ok", "42"])
    assert (await g.run({"question": "6 * 7?"}, backend=backend)).output.answer == 42
    messages = backend.requests[1].prompt
    assert [m.role for m in messages] == ["system", "user", "user"] and messages[2].content.startswith("42\n\nCheck")


async def test_a_revision_that_never_parses_fails_the_node_naming_the_stage():
    with pytest.raises(NodeFailedError, match="refine/revise"):
        await refine(["41", "wrong", "no number", "still none", "nothing"])


@pytest.mark.parametrize("kwargs, message", [
    ({"step": "Q: {question}"}, "Refine needs a ChainStep"),
    ({"max_iterations": 0}, "max_iterations counts critique-and-revise rounds"),
    ({"critique": "Review it:"}, "critique template needs the placeholder\\(s\\) \\{draft\\}"),
    ({"revise": "{draft} again:"}, "revise template needs the placeholder\\(s\\) \\{critique\\}"),
    ({"critique": "{draft} {topic}"}, "uses \\{topic\\}, which is neither an input of the step"),
    ({"similarity": 2}, "token-Jaccard threshold"),
    ({"until": "done"}, "until= must be 'fixed_point' or None"),
    ({"until": None, "normalize": str.lower}, "only apply with until='fixed_point'"),
    ({"halt": "yes"}, "halt= must be a callable"),
])
def test_bad_arguments_are_one_line_config_errors(kwargs, message):
    step = kwargs.pop("step", solve())
    with pytest.raises(ConfigError, match=message):
        Refine(step, **kwargs)


def test_a_step_that_uses_draft_itself_is_refused():
    with pytest.raises(ConfigError, match="already uses \\{draft\\}"):
        Refine(ChainStep("Improve: {draft}"))


async def test_a_recorded_refine_replays_without_a_backend(tmp_path):
    g = Graph("replayed")
    g.add(Refine(solve(), name="refine"))
    path = tmp_path / "runs.db"
    backend = ScriptedBackend(["41", "wrong", "42", "ok", "42"])
    recorded = await g.run({"question": "6 * 7?"}, backend=backend, checkpoint=path, run_id="r")
    replayed = await g.run(checkpoint=path, run_id="r", replay=True)
    assert replayed.output == recorded.output and replayed.output.stopped == "fixed_point"
    assert replayed.nodes["refine/revise"].loop_stops == ["fixed_point"] and len(backend.requests) == 5


async def test_a_step_budget_bounds_each_critique_and_revision_too():
    step = ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), budget=120, name="solve")
    g = Graph("budgeted")
    g.add(Refine(step, name="refine"))
    backend = ScriptedBackend(["41", "wrong", "42", "ok", "42"])
    assert (await g.run({"question": "6 * 7?"}, backend=backend)).output.answer == 42
    assert len(backend.requests) == 5
    assert all(r.params.max_tokens is not None and 0 < r.params.max_tokens < 120 for r in backend.requests)


async def test_every_call_goes_to_the_steps_named_backend():
    step = ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), model="big", name="solve")
    g = Graph("named")
    g.add(Refine(step, name="refine"))
    big = ScriptedBackend(["41", "wrong", "42", "ok", "42"])
    result = await g.run({"question": "6 * 7?"}, backends={"big": big})
    assert result.output.answer == 42 and len(big.requests) == 5
    with pytest.raises(ConfigError, match="asks for model 'big'"):
        await g.run({"question": "6 * 7?"}, backend=ScriptedBackend(["42"]))
