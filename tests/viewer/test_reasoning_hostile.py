"""Hostile values in a trace render as text, and a malformed or crafted trace cannot break the panels."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reasoning_traces import HOSTILE, Markup, failed_plan_trace, hostile_tree_trace, hostile_vote_trace

from plait.viewer._reasoning import reasoning_panels
from plait.viewer._reasoning_trees import MAX_DEPTH


def assert_inert(page):
    """No element came out of the run's values: the only tags are the panels' own."""
    tags = {tag for tag, _ in page.elements}
    assert "img" not in tags and "script" not in tags
    assert not any(name.startswith("on") for _, attrs in page.elements for name in attrs)


def test_an_injected_winning_answer_is_text_in_the_bars_and_the_verdict(tmp_path):
    page = Markup(reasoning_panels(hostile_vote_trace(tmp_path)))
    assert_inert(page)
    assert page.text_of("plait-vote-winner") == [HOSTILE]
    bars = {b["data-answer"]: b["data-weight"] for b in page.having("plait-vote-bar")}
    assert bars == {HOSTILE: "3", "Paris": "1"}
    [card] = page.text_of("plait-vote")
    assert "5 / 5 samples" in card and "1 failed (1 truncated)" in card
    [errors] = page.text_of("plait-vote-errors")
    assert "sample 2: cut off at max_tokens=64" in errors


def test_a_vote_below_quorum_shows_no_winner_and_its_failed_samples(tmp_path):
    events = hostile_vote_trace(tmp_path, quorum=5)
    assert events[-1]["kind"] == "run_finished" and events[-1]["status"] == "failed"
    page = Markup(reasoning_panels(events))
    assert page.text_of("plait-no-winner") == ["no winner: 4 sample(s) succeeded, quorum 5"]
    assert not page.having("plait-vote-bar")  # no distribution was decided
    assert [s["class"].split()[1] for s in page.having("plait-sample")] == \
        ["plait-other", "plait-other", "plait-failed", "plait-other", "plait-other"]


def test_an_injected_question_and_conclusion_are_text_in_the_tree(tmp_path):
    page = Markup(reasoning_panels(hostile_tree_trace(tmp_path)))
    assert_inert(page)
    assert page.text_of("plait-question") == [HOSTILE, HOSTILE, "What is 2+2?"]
    assert page.text_of("plait-conclusion")[1] == "\u2192 " + HOSTILE


def test_an_injected_tool_argument_is_text_in_the_plan(tmp_path):
    page = Markup(reasoning_panels(failed_plan_trace(tmp_path)))
    assert_inert(page)
    rows = {attrs["data-step"]: text for tag, attrs, text in page.texts if tag == "tr" and "data-step" in attrs}
    assert rows["E1"].startswith("E1search" + '{"query": "' + HOSTILE + '"}' + HOSTILE)


WRONG = [None, 7, "text", [1, [2]], {"a": {"b": None}}, True, float("nan")]


@pytest.mark.parametrize("wrong", WRONG, ids=[type(w).__name__ for w in WRONG])
def test_fields_of_the_wrong_type_render_as_empty_not_as_an_error(wrong):
    fields = {
        "vote_tallied": ["node", "k", "aggregator", "wave", "quorum", "winner", "distribution", "agreement",
                         "answers", "failed", "truncated", "cancelled", "stopped_early", "errors", "tokens"],
        "subtask_tree_solved": ["node", "tree", "stats"],
        "formulation_checked": ["node", "round", "status", "finding", "csp", "solutions", "count"],
        "proposal_settled": ["node", "rounds", "from_model", "from_solver", "status", "solution"],
    }
    events = [{"kind": kind, **{name: wrong for name in names}} for kind, names in fields.items()]
    events += [{"kind": "custom", "node": wrong, "name": name, "data": wrong}
               for name in ("plan", "plan_step_finished", "replan", "answer", "retraction", "csp_solved")]
    events += [{"kind": "custom", "node": "p", "name": "plan", "data": {"valid": True,
                                                                        "steps": [wrong, {"id": wrong}]}},
               {"kind": "custom", "node": "p/E1", "name": "plan_step_finished", "data": {"step": wrong}},
               {"kind": "custom", "node": "r", "name": "retraction", "data": {"variables": [wrong], "values": wrong}},
               {"kind": "subtask_tree_solved", "node": "t", "tree": {"subtasks": [wrong, {"task": wrong}]}},
               wrong, {"kind": wrong}]
    page = Markup(reasoning_panels(events))
    assert {"plait-votes", "plait-trees", "plait-plans", "plait-solver"} <= {
        c for _, attrs in page.elements for c in (attrs.get("class") or "").split()}


def test_a_crafted_deep_tree_and_deep_arguments_render_within_the_caps():
    root = leaf = {"task": "level 0", "path": "", "subtasks": []}
    for depth in range(1, 5000):  # far deeper than Python's recursion limit
        child = {"task": f"level {depth}", "path": str(depth), "subtasks": []}
        leaf["subtasks"].append(child)
        leaf = child
    args = nested = {}
    for _ in range(5000):
        nested["x"] = {}
        nested = nested["x"]
    nested["ref"] = "#E1"
    events = [{"kind": "subtask_tree_solved", "node": "deep", "tree": root, "stats": {}},
              {"kind": "custom", "node": "p", "name": "plan", "data": {"valid": True, "steps": [
                  {"id": "E1", "tool": "t", "args": {}}, {"id": "E2", "tool": "t", "args": args}]}},
              {"kind": "vote_tallied", "node": "v", "k": 10**9, "answers": ["a"] * 10, "distribution": {
                  str(i): i for i in range(5000)}}]
    page = Markup(reasoning_panels(events))
    assert len(page.having("plait-task")) == MAX_DEPTH + 1
    assert any(f"deeper than {MAX_DEPTH} levels" in t for t in page.text_of("plait-more"))
    assert len(page.having("plait-plan-edge")) == 1  # the reference 5,000 levels down still makes the edge
    assert len(page.having("plait-vote-bar")) == 200 and len(page.having("plait-sample")) == 256


def test_many_solver_nodes_are_capped_with_a_note_saying_how_many_were_left_out():
    events = [{"kind": "custom", "node": f"propose[{i}]", "name": "retraction",
               "data": {"round": 1, "variables": ["x"], "values": {"x": i}, "reason": "clash"}} for i in range(250)]
    page = Markup(reasoning_panels(events))
    assert len(page.having("plait-propose")) == 200 and len(page.having("plait-retraction")) == 200
    assert page.text_of("plait-more") == ["50 more solver nodes not shown."]


_ALLOWED_TAGS = {"div", "style", "h2", "h3", "h4", "h5", "p", "b", "small", "span", "svg", "g", "title", "text",
                 "rect", "line", "defs", "marker", "path", "details", "summary", "ul", "ol", "li", "table", "thead",
                 "tbody", "tr", "th", "td", "code", "pre", "br"}
_text = st.one_of(st.text(max_size=12), st.sampled_from([HOSTILE, "#E1", "#E1.0", "E1", "E2", "plan", "done", "a/b",
                                                         "'\"><svg onload=alert(1)>", "&amp;<!--", ""]))
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _text,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                     max_leaves=16)
_FIELDS = {
    "vote_tallied": ["node", "k", "wave", "quorum", "winner", "distribution", "agreement", "answers", "failed",
                     "stopped_early", "errors", "tokens"],
    "subtask_tree_solved": ["node", "tree", "stats"],
    "formulation_checked": ["node", "round", "status", "finding", "csp", "solutions", "count"],
    "proposal_settled": ["node", "rounds", "from_model", "from_solver", "status", "solution"],
}
_event = st.one_of(
    *[st.fixed_dictionaries({"kind": st.just(kind)}, optional={f: _json for f in fields})
      for kind, fields in _FIELDS.items()],
    st.fixed_dictionaries({"kind": st.just("custom"), "node": _text, "data": _json,
                           "name": st.sampled_from(["plan", "plan_step_finished", "replan", "answer", "retraction",
                                                    "csp_solved"])}),
    st.fixed_dictionaries({"kind": st.just("custom"), "node": st.sampled_from(["p", "p/E1", "q"]),
                           "name": st.just("plan"), "data": st.fixed_dictionaries({
                               "valid": st.just(True), "steps": st.lists(st.fixed_dictionaries(
                                   {"id": _text, "tool": _json, "args": _json, "thought": _json}), max_size=5)})}),
    st.fixed_dictionaries({"kind": st.just("custom"), "node": st.sampled_from(["p", "p/E1", "q"]),
                           "name": st.just("plan_step_finished"), "data": st.fixed_dictionaries({
                               "step": _text, "ok": _json, "result": _json, "args": _json})}),
)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event, max_size=8))
def test_any_event_values_render_without_error_and_only_as_text(events):
    page = Markup(reasoning_panels(events))
    assert {tag for tag, _ in page.elements} <= _ALLOWED_TAGS
    assert not any(name.startswith("on") for _, attrs in page.elements for name in attrs)
