"""A trace is hostile input: crafted events and shapes give a page (or a one-line error), never a crash,
and nothing in them can end the embedded data block."""

from __future__ import annotations

import json
import math

from browser_harness import open_page
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import write_view
from plait.viewer._critical import critical_path
from plait.viewer._layout import MAX_DEPTH, layout
from plait.viewer._model import build_run
from plait.viewer._page import _script_json, batch_page, run_page
from plait.viewer._sources import SourceRun

KINDS = ["run_started", "run_finished", "node_started", "node_finished", "node_failed", "node_retried",
         "node_skipped", "node_cancelled", "tokens_used", "custom", "loop_iteration", "???"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                    st.sampled_from(["NaN", "Infinity"]), st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=8)
names = st.one_of(st.sampled_from(["a", "b", "a[0]", "a[1]/x", "g/b", "</script>", ""]), values)
events = st.fixed_dictionaries(
    {"kind": st.sampled_from(KINDS)},
    optional={"node": names, "t": values, "attempt": values, "duration": values, "output": values,
              "error": values, "status": values, "restored": values, "prompt_tokens": values,
              "completion_tokens": values, "cached_tokens": values, "model": values, "inputs": values,
              "route": values, "shape": values, "run_id": values, "graph": values})


def _embedded(page: str) -> dict:
    start = page.index('id="plait-data">') + len('id="plait-data">')
    return json.loads(page[start:page.index("</script>", start)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=25))
def test_any_event_list_makes_a_page_whose_data_parses(evs):
    page = run_page(SourceRun(evs))
    data = _embedded(page)
    for act in data["acts"]:
        assert math.isfinite(act["start"]) and math.isfinite(act["end"])
        assert act["status"] in ("ok", "failed", "skipped", "cancelled", "restored", "interrupted")
    for item in data["layout"]["items"]:
        assert all(math.isfinite(item[k]) for k in ("x", "y", "w", "h"))
    assert set(data["nodes"]) <= {item["name"] for item in data["layout"]["items"]}


def test_infinite_floats_become_text(tmp_path):
    trace = tmp_path / "inf.jsonl"
    trace.write_text('{"kind": "run_started", "run_id": "r", "t": 0, "inputs": {"x": 1e999, "y": NaN}}\n'
                     '{"kind": "node_finished", "run_id": "r", "node": "a", "t": 1e999, "output": -1e999}\n')
    page = write_view(trace, tmp_path / "inf.html")
    data = _embedded(page.read_text())
    assert data["run"]["inputs"] == {"x": "1e999", "y": "NaN"} and data["acts"][0]["output"] == "-1e999"
    assert _embedded(run_page(SourceRun([{"kind": "node_finished", "node": "a", "output": [float("inf")]}])))[
        "acts"][0]["output"] == ["inf"]


def test_nothing_in_the_data_can_close_the_script_block():
    text = _script_json({"a": "</script><!-- <script>", "b": "\u2028\u2029&", "</script>": 1})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- <script>", "b": "\u2028\u2029&", "</script>": 1}


def test_a_crafted_shape_still_lays_out():
    deep = {"nodes": [{"name": "leaf"}], "edges": []}
    for _ in range(MAX_DEPTH * 4):
        deep = {"nodes": [{"name": "n", "graph": deep}], "edges": []}
    shape = {"nodes": [{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "deep", "graph": deep}, 7, {"name": 3}],
             "edges": [{"src": "a", "dst": "b"}, {"src": "b", "dst": "a"}, {"src": "c", "dst": "c"},
                       {"src": "a", "dst": "nowhere"}, "junk", {"src": ["x"], "dst": {"y": 1}}]}
    result = layout(shape, ["a", "b", "c", "stray", "deep/n/ran"])
    drawn = {item["name"] for item in result["items"]}
    assert {"a", "b", "c", "stray", "deep", "deep/n", "deep/n/ran"} <= drawn
    assert len(result["items"]) < 200  # nesting stops at MAX_DEPTH
    assert all(item["w"] > 0 and item["h"] > 0 for item in result["items"])


def test_ten_thousand_nodes_lay_out_in_layers():
    shape = {"nodes": [{"name": f"n{i}"} for i in range(10_000)],
             "edges": [{"src": f"n{i}", "dst": f"n{i + 1}"} for i in range(0, 9_999, 2)]}
    result = layout(shape, [])
    ys = {item["name"]: item["y"] for item in result["items"]}
    assert len(ys) == 10_000 and all(ys[f"n{i}"] < ys[f"n{i + 1}"] for i in range(0, 9_999, 2))


def test_statuses_follow_the_events():
    evs = [{"kind": "run_started", "run_id": "r", "t": 0, "graph": "g"},
           {"kind": "node_started", "node": "a", "t": 0.0, "attempt": 1, "inputs": {"x": 1}},
           {"kind": "node_failed", "node": "a", "t": 0.1, "error": "E1", "attempt": 1},
           {"kind": "node_retried", "node": "a", "t": 0.1, "attempt": 2, "delay": 0.0, "error": "E1"},
           {"kind": "node_started", "node": "a", "t": 0.2, "attempt": 2},
           {"kind": "node_finished", "node": "a", "t": 0.3, "duration": 0.1, "output": 5},
           {"kind": "node_skipped", "node": "b", "t": 0.3, "reason": "route"},
           {"kind": "node_finished", "node": "c", "t": 0.3, "duration": 0.0, "output": 1, "restored": True},
           {"kind": "node_started", "node": "d", "t": 0.3, "attempt": 1},
           {"kind": "node_started", "node": "e[0]", "t": 0.3, "attempt": 1},
           {"kind": "node_finished", "node": "e[1]", "t": 0.3, "duration": 0.1, "output": 2},
           {"kind": "node_cancelled", "node": "e[0]", "t": 0.35},
           {"kind": "run_finished", "t": 0.4, "status": "interrupted", "duration": 0.4, "tokens": 0}]
    model = build_run(evs)
    assert {n: v["status"] for n, v in model["nodes"].items()} == {
        "a": "ok", "b": "skipped", "c": "restored", "d": "interrupted", "e": "cancelled"}
    assert [act["label"] for act in model["acts"] if act["node"] == "e"] == ["e[0]", "e[1]"]
    (a,) = [act for act in model["acts"] if act["node"] == "a"]
    assert (a["attempts"], a["inputs"], a["output"], len(a["retries"])) == (2, {"x": 1}, 5, 1)


def test_a_page_of_garbage_types_loads_without_js_errors(browser, tmp_path):
    evs = [{"kind": "run_started", "run_id": ["x"], "t": "soon", "graph": {"g": 1}, "inputs": "NaN",
            "shape": {"nodes": "abc", "edges": 5}},
           {"kind": "node_started", "node": "a", "t": None, "attempt": "1", "inputs": {"<b>": "</script>"}},
           {"kind": "tokens_used", "node": "a", "prompt_tokens": -5, "cached_tokens": "9", "model": ["m"]},
           {"kind": "node_finished", "node": "a", "t": 1e308, "duration": -1e308, "output": "Infinity"},
           {"kind": "run_finished", "status": 3, "duration": "long", "error": {"e": 1}}]
    page = tmp_path / "garbage.html"
    page.write_text(run_page(SourceRun(evs)))
    loaded = open_page(browser, page)
    assert browser.execute_script("return document.body.dataset.ready") == "1"
    assert browser.execute_script("return document.querySelectorAll('#graph .node').length") == 1
    node = browser.find_element("css selector", "#graph .node")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", node)
    inputs = browser.find_element("css selector", "#details pre.inputs").text
    assert json.loads(inputs) == {"<b>": "</script>"}
    assert browser.find_elements("css selector", "#details b b") == []  # the key is text, not an element
    assert loaded.errors() == []


def test_extreme_times_stay_finite():
    model = build_run([{"kind": "node_finished", "node": "a", "t": 1e308, "duration": -1e308},
                       {"kind": "node_started", "node": "b", "t": -1e308},
                       {"kind": "node_finished", "node": "b", "t": 1e308, "duration": 1}])
    assert all(math.isfinite(a["start"]) and math.isfinite(a["end"]) for a in model["acts"])
    assert all(math.isfinite(n["busy"]) for n in model["nodes"].values())
    assert json.loads(_script_json(model["acts"]))


def test_the_critical_path_follows_edges_back_from_the_last_activation():
    shape = {"nodes": [{"name": n} for n in "abcd"],
             "edges": [{"src": "a", "dst": "b"}, {"src": "a", "dst": "c"}, {"src": "b", "dst": "d"},
                       {"src": "c", "dst": "d"}]}
    acts = [{"node": n, "start": s, "end": e, "status": "ok"}
            for n, s, e in [("a", 0, 1), ("b", 1, 2), ("c", 1, 5), ("d", 5, 6)]]
    assert critical_path(acts, shape) == [3, 2, 0]
    # a two-node loop of 20,000 activations: the walk visits each at most once
    loop = {"nodes": [{"name": "x"}, {"name": "y"}], "edges": [{"src": "x", "dst": "y"}, {"src": "y", "dst": "x"}]}
    many = [{"node": "xy"[i % 2], "start": float(i), "end": i + 1.0, "status": "ok"} for i in range(20_000)]
    assert len(critical_path(many, loop)) == 20_000


def test_a_batch_page_escapes_every_value():
    bad = '<img src=x onerror="alert(1)">'
    events = [{"kind": "run_started", "run_id": bad, "inputs": {bad: bad}},
              {"kind": "run_finished", "status": bad, "tokens": 3, "duration": 1.5, "error": bad}]
    page = batch_page([SourceRun(events)], ['x.html"><script>alert(1)</script>'], bad)
    assert "<img" not in page and "<script>" not in page
    assert page.count("&lt;img src=x") >= 4
