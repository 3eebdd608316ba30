"""The typed events the reasoning panels read, as the nodes emit them, and the solver panel's repair rounds."""

import json

import anyio
import pytest
from reasoning_traces import Markup, hostile_vote_trace, load_example, run_traced

from plait import FanOut, Graph, RunContext, ScriptedBackend
from plait.orchestrator import FormulationChecked, FunctionNode, ProposalSettled, VoteTallied
from plait.planners import EarlyStop
from plait.errors import NodeFailedError
from plait.solvers import Formulate
from plait.viewer._reasoning import reasoning_panels

VARS = [{"name": n, "domain": {"min": 1, "max": 3}} for n in ("Ann", "Bob", "Cid")]
DIFF = {"kind": "all_different", "variables": ["Ann", "Bob", "Cid"]}
GOOD = {"variables": VARS, "constraints": [DIFF, "Ann != 1", "Bob + 1 == Cid"]}
UNSAT = {"variables": VARS, "constraints": [DIFF, "Ann != 1", "Bob + 1 == Cid", "Cid == 1"]}


def typed(result, cls):
    return [e for e in result.events if isinstance(e, cls)]


def test_vote_tallied_has_the_samples_in_draw_order_and_where_the_vote_stopped():
    module = load_example("self_consistency")
    result = anyio.run(lambda: module.graph.run({"question": "pens?"}, backend=module.make_backend()))
    [vote] = typed(result, VoteTallied)
    assert (vote.node, vote.k, vote.aggregator, vote.wave, vote.quorum) == ("vote", 8, "EarlyStop", 4, 1)
    assert vote.answers == ["55", "55", "45", "55"] and vote.winner == "55" and vote.stopped_early
    assert vote.distribution == {"55": 3.0, "45": 1.0} and vote.agreement == 0.75
    assert (vote.failed, vote.truncated, vote.cancelled, vote.errors) == (0, 0, 0, [])
    assert vote.tokens == result.nodes["vote"].output.tokens > 0
    assert json.loads(json.dumps(vote.to_dict()))["kind"] == "vote_tallied"


def test_vote_tallied_counts_truncated_samples_among_the_failed(tmp_path):
    [vote] = [e for e in hostile_vote_trace(tmp_path) if e["kind"] == "vote_tallied"]
    assert vote["answers"][2] is None and vote["failed"] == 1 and vote["truncated"] == 1
    assert vote["errors"][0].startswith("sample 2: cut off at max_tokens=64")


def test_formulation_checked_records_each_round_and_the_panel_shows_the_repairs(tmp_path):
    graph = Graph("formulate")
    graph.add(Formulate(max_rounds=3, syntax="json"))
    backend = ScriptedBackend(["{not json", json.dumps(UNSAT), json.dumps(GOOD)])
    events = run_traced(graph, {"problem": "seats"}, backend, tmp_path / "formulate.jsonl")
    rounds = [e for e in events if e["kind"] == "formulation_checked"]
    assert [(r["round"], r["status"]) for r in rounds] == [(1, "invalid"), (2, "unsat"), (3, "solved")]
    assert rounds[0]["csp"] is None and "does not fit the CSP schema" in rounds[0]["finding"]
    assert len(rounds[1]["csp"]["constraints"]) == 4 and "no solution" in rounds[1]["finding"]
    assert rounds[2]["finding"] is None and rounds[2]["solutions"] == [{"Ann": 3, "Bob": 1, "Cid": 2}]
    assert rounds[2]["count"] == 1
    page = Markup(reasoning_panels(events))
    assert [r["class"].split()[1] for r in page.having("plait-round")] == \
        ["plait-round-repair", "plait-round-repair", "plait-round-ok"]
    findings = page.text_of("plait-finding")
    assert "does not fit the CSP schema" in findings[0] and "Cid == 1" in findings[1]
    [final] = page.text_of("plait-final-model")
    assert "3 variable(s)" in final and "Bob + 1 == Cid" in final and "Cid == 1" not in final
    cells = [text for tag, _, text in page.texts if tag == "td"]
    assert cells == ["3", "1", "2"]  # the one solution: Ann, Bob, Cid


def test_proposal_settled_says_who_chose_each_value():
    module = load_example("meetings")
    result = anyio.run(lambda: module.graph.run({"problem": module.REQUEST}, backend=module.make_backend()))
    [settled] = typed(result, ProposalSettled)
    assert settled.rounds == 2 and settled.status == "sat" and settled.from_solver == []
    assert settled.from_model == {"Planning": 10, "Hiring": 14, "Design": 12, "Retro": 11} == settled.solution
    assert [e.round for e in typed(result, FormulationChecked)] == [1]


def test_emit_refuses_a_class_that_is_not_a_node_event():
    graph = Graph("bad_emit")

    @graph.node
    async def shout(x: int, ctx: RunContext) -> int:
        ctx.emit(dict, x=x)
        return x

    with pytest.raises(NodeFailedError) as err:
        anyio.run(lambda: graph.run(1))
    assert "emit() takes an event name (str) or a node event class such as VoteTallied, got <class 'dict'>" \
        in str(err.value)


def test_samples_cancelled_by_an_early_stop_are_counted_and_shown(tmp_path):
    async def attempt(x: int, ctx: RunContext) -> int:
        if ctx.node.endswith("[3]"):  # the fourth sample never finishes on its own: only the stop ends it
            await anyio.sleep_forever()
        return x

    graph = Graph("cancelling")
    graph.add(FanOut(FunctionNode(attempt, name="attempt"), k=8,
                     aggregate=EarlyStop(wave=4, confidence=1.0, min_samples=3), name="vote"))
    events = run_traced(graph, {"x": 4}, ScriptedBackend([]), tmp_path / "cancelling.jsonl")
    [vote] = [e for e in events if e["kind"] == "vote_tallied"]
    assert vote["answers"] == ["4", "4", "4"] and vote["cancelled"] == 1 and vote["stopped_early"]
    [card] = Markup(reasoning_panels(events)).text_of("plait-vote")
    assert "3 / 8 samples" in card and "early stop settled it after 3 of 8 samples" in card
    assert "1 cancelled by the stop" in card
