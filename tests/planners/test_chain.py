"""ChainStep: typed inputs from the template, constraint sending, re-ask on parse failure."""

import anyio
import pytest
from pydantic import BaseModel

from plait import Graph, JsonSchema, Message, NodeFailedError, ParseError, SamplingParams, ScriptedBackend
from plait.executors import Regex
from plait.planners import ChainStep, ModelParser, NumberParser


class Verdict(BaseModel):
    ok: bool
    reason: str


def run(graph, inputs, backend, **kw):
    return anyio.run(lambda: graph.run(inputs, backend=backend, **kw))


def test_template_variables_become_typed_inputs():
    step = ChainStep("Add {a} and {b}. Note: {note}", NumberParser(int), inputs={"a": int, "b": int},
                     defaults={"note": "none"})
    assert list(step.params) == ["a", "b", "note"]
    assert step.params["a"].annotation is int and step.params["note"].annotation is str
    assert not step.params["note"].required and step.params["a"].required
    assert step.output_type is int
    with pytest.raises(ValueError, match="not placeholders"):
        ChainStep("{a}", inputs={"zzz": int})


def test_chain_of_steps_in_a_graph_sends_constraint():
    first = ChainStep("How many legs has a {animal}?", NumberParser(int), name="legs")
    second = ChainStep("Double {n}.", NumberParser(int), inputs={"n": int}, name="double")
    g = Graph("chain")
    g.chain(first, second)
    backend = ScriptedBackend(["4", "8"])
    result = run(g, {"animal": "dog"}, backend)
    assert result.output == 8
    assert backend.requests[0].prompt == "How many legs has a dog?"
    assert backend.requests[1].prompt == "Double 4."
    assert backend.requests[0].params.constraint == Regex(pattern=r"-?\d+")
    assert backend.requests[0].tag == "legs"


def test_constraint_not_sent_when_backend_lacks_structured_output():
    backend = ScriptedBackend(["4"])
    backend.supports_structured_output = False
    g = Graph("g")
    g.add(ChainStep("{q}", NumberParser(int), name="s"))
    assert run(g, {"q": "x"}, backend).output == 4
    assert backend.requests[0].params.constraint is None


def test_chat_template_and_pydantic_output():
    step = ChainStep([("system", "Judge answers."), ("user", "Is {claim} true?")], ModelParser(Verdict),
                     sampling=SamplingParams(max_tokens=40), name="judge")
    g = Graph("g")
    g.add(step)
    backend = ScriptedBackend(['{"ok": true, "reason": "checked"}'])
    assert run(g, {"claim": "2+2=4"}, backend).output == Verdict(ok=True, reason="checked")
    sent = backend.requests[0]
    assert sent.prompt == (Message(role="system", content="Judge answers."),
                           Message(role="user", content="Is 2+2=4 true?"))
    assert isinstance(sent.params.constraint, JsonSchema) and sent.params.max_tokens == 40


def test_parse_failure_is_reasked_with_the_error_shown():
    g = Graph("g")
    g.add(ChainStep("Q: {q}\nA:", NumberParser(int), name="s"))
    backend = ScriptedBackend(["seven", "7"])
    assert run(g, {"q": "3+4"}, backend).output == 7
    assert len(backend.requests) == 2
    retry = backend.requests[1].prompt
    assert retry.startswith("Q: 3+4\nA:seven") and "no number found" in retry


def test_chat_reask_appends_assistant_and_user_messages():
    g = Graph("g")
    g.add(ChainStep([("user", "{q}")], ModelParser(Verdict), name="s"))
    backend = ScriptedBackend(['{"ok": "maybe"}', '{"ok": false, "reason": "no"}'])
    assert run(g, {"q": "?"}, backend).output.ok is False
    roles = [m.role for m in backend.requests[1].prompt]
    assert roles == ["user", "assistant", "user"]
    assert "reason: Field required" in backend.requests[1].prompt[2].content


def test_parse_error_after_bounded_reasks_carries_raw_text():
    g = Graph("g")
    g.add(ChainStep("{q}", NumberParser(int), max_reasks=1, name="s"))
    backend = ScriptedBackend(["none", "still none", "42"])
    with pytest.raises(NodeFailedError) as info:
        run(g, {"q": "x"}, backend)
    cause = info.value.cause
    assert isinstance(cause, ParseError)
    assert cause.raw == "still none" and cause.attempts == ["none", "still none"]
    assert len(backend.requests) == 2 and backend.remaining == ["42"]


def test_ask_inside_a_custom_node_counts_tokens_on_that_node():
    step = ChainStep("Say {word}", name="say")
    g = Graph("g")

    @g.node
    async def wrapper(word: str, ctx) -> str:
        return (await step.ask(ctx, {"word": word})).value.upper()

    result = run(g, {"word": "hi"}, ScriptedBackend(["hello"]))
    assert result.output == "HELLO"
    assert result.nodes["wrapper"].tokens.completion_tokens == 1
