"""Viewer pages in a real headless chromium: what a person would check, on traces of the examples."""

from __future__ import annotations

import json

import anyio
import pytest
from browser_harness import open_page
from view_traces import (INJECTED, activations, example_trace, failing_trace, injected_trace, load_example,
                         shape_nodes)

from plait import read_trace, run_batch, write_view


def _page(browser, trace, tmp_path, name):
    out = write_view(trace, tmp_path / f"{name}.html")
    page = open_page(browser, out)
    page.screenshot(tmp_path / f"{name}.png")
    return page


def _dom(browser, script):
    return browser.execute_script(script)


def _statuses(browser) -> dict[str, str]:
    return _dom(browser, "const o = {}; document.querySelectorAll('#graph .node').forEach("
                         "n => o[n.dataset.node] = n.dataset.status); return o;")


def _click_node(browser, name):
    node = [n for n in browser.find_elements("css selector", "#graph .node")
            if n.get_attribute("data-node") == name]
    assert node, f"no node {name!r} drawn"
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", node[0])
    return browser.find_element("id", "details")


@pytest.mark.parametrize("example", ["self_consistency", "subtask_tree", "plan_execute_countries", "meetings",
                                     "subgraph", "dynamic_map", "bounded_loop"])
def test_example_page_draws_every_node_and_activation(browser, tmp_path, example):
    trace = example_trace(example, tmp_path)
    page = _page(browser, trace, tmp_path, example)
    statuses = _statuses(browser)
    assert set(shape_nodes(trace)) <= set(statuses)
    assert set(statuses.values()) == {"ok"}
    bars = browser.find_elements("css selector", "#timeline-wrap .bar")
    assert len(bars) == activations(trace)
    assert browser.find_element("id", "run-status").text == "ok"
    assert page.errors() == []


def test_clicking_a_node_shows_its_inputs_and_output(browser, tmp_path):
    trace = example_trace("subgraph", tmp_path)
    _page(browser, trace, tmp_path, "subgraph")
    details = _click_node(browser, "left/grade")
    finished = next(e for e in read_trace(trace) if e["kind"] == "node_finished" and e["node"] == "left/grade")
    started = next(e for e in read_trace(trace) if e["kind"] == "node_started" and e["node"] == "left/grade")
    assert details.find_element("css selector", ".details-title").text == "left/grade"
    assert json.loads(details.find_element("css selector", "pre.output").text) == finished["output"]
    assert json.loads(details.find_element("css selector", "pre.inputs").text) == started["inputs"]
    # the subgraph is drawn as a group holding its nodes
    group = browser.find_element("css selector", "#graph .group[data-node='left']")
    assert group.get_attribute("data-status") == "ok"
    # the critical path runs from the first node to the last, through one of the two branches
    critical = _dom(browser, "return [...document.querySelectorAll('.bar.critical')].map("
                             "b => b.getAttribute('title').split(' · ')[0])")
    assert critical[0] == "split" or "split" in critical
    assert "combine" in critical and ({"first_q", "second_q"} & set(critical))


def test_map_items_and_loop_iterations_get_their_own_bars(browser, tmp_path):
    _page(browser, example_trace("dynamic_map", tmp_path), tmp_path, "map")
    rows = _dom(browser, "return [...document.querySelectorAll('.tl-label')].map(e => e.textContent)")
    assert {"answer[0]", "answer[1]", "answer[2]"} <= set(rows)
    assert _dom(browser, "return document.querySelector('#graph .node[data-node=\"answer\"] text + text')"
                         ".textContent").startswith("3 runs")

    trace = example_trace("bounded_loop", tmp_path)
    _page(browser, trace, tmp_path, "loop")
    drafts = sum(1 for e in read_trace(trace) if e["kind"] == "node_started" and e["node"] == "draft")
    assert drafts >= 2  # the example's checker sends the first draft back
    row_bars = _dom(browser, "const row = [...document.querySelectorAll('.tl-row')].find("
                             "r => r.querySelector('.tl-label').textContent === 'draft');"
                             "return row.querySelectorAll('.bar').length")
    assert row_bars == drafts


def test_a_failed_run_shows_the_failure_retries_and_what_did_not_run(browser, tmp_path):
    page = _page(browser, failing_trace(tmp_path), tmp_path, "failed")
    assert _statuses(browser) == {"parse": "ok", "divide": "failed", "report": "not run"}
    assert browser.find_element("id", "run-status").text == "failed"
    details = _click_node(browser, "divide")
    assert "cannot share 3 items among 0 people" in details.find_element("css selector", "pre.error").text
    assert "attempts 2" in details.text
    assert "attempt 2" in details.find_element("css selector", ".retries").text
    assert "cannot share 3 items" in browser.find_element("id", "run-error").text
    assert page.errors() == []


def test_injected_markup_is_shown_as_text_and_never_runs(browser, tmp_path):
    trace = injected_trace(tmp_path)
    page = _page(browser, trace, tmp_path, "inject")
    assert _dom(browser, "return window.__pwned") is None
    assert browser.find_elements("css selector", "img") == []
    assert INJECTED in browser.find_element("tag name", "h1").text
    assert INJECTED in browser.title
    node = "echo" + INJECTED
    assert node in _statuses(browser)
    details = _click_node(browser, node)
    assert details.find_element("css selector", "pre.output").text == INJECTED + INJECTED
    assert INJECTED in _click_node(browser, "boom").find_element("css selector", "pre.error").text
    assert _dom(browser, "return window.__pwned") is None
    assert page.errors() == []


def test_batch_page_links_to_a_page_per_run(browser, tmp_path):
    module = load_example("batch_eval")
    inputs = [json.loads(line) for line in module.DATA.read_text().splitlines()]
    db = tmp_path / "runs.db"
    anyio.run(lambda: run_batch(module.graph, inputs, backend=module.make_backend(), checkpoint=db,
                                batch_id="arith", id_field="id"))
    out = write_view(db, tmp_path / "batch.html")
    page = open_page(browser, out)
    page.screenshot(tmp_path / "batch.png")
    links = browser.find_elements("css selector", "#batch .batch-run a")
    assert sorted(a.text for a in links) == sorted(f"arith/{i}" for i in range(len(inputs)))
    shown = browser.find_elements("css selector", "#batch .batch-run td.input")
    assert {json.loads(td.text)["question"] for td in shown} == {i["question"] for i in inputs}
    hrefs = [a.get_dom_attribute("href") for a in links]
    assert all((out.parent / href).is_file() for href in hrefs)
    assert page.errors() == []
    run_page = open_page(browser, out.parent / hrefs[0])
    assert browser.find_element("id", "note").text.startswith("Made from a checkpoint")
    assert set(_statuses(browser)) == set(module.graph.nodes)
    assert set(_statuses(browser).values()) == {"ok"}
    assert browser.find_elements("css selector", "#timeline-wrap") == []  # a checkpoint has no start times
    assert run_page.errors() == []


def _big_run(n: int) -> list[dict]:
    """A run of ``n`` nodes in layers of 20, one activation each (events as a trace holds them)."""
    nodes = [{"name": f"n{i}", "type": "FunctionNode"} for i in range(n)]
    edges = [{"src": f"n{i - 20}", "dst": f"n{i}", "kind": "plain", "back": False} for i in range(20, n)]
    events = [{"kind": "run_started", "run_id": "big", "t": 0.0, "graph": "big",
               "shape": {"name": "big", "nodes": nodes, "edges": edges, "output": None}}]
    for i in range(n):
        t = i * 0.001
        events += [{"kind": "node_started", "node": f"n{i}", "t": t, "attempt": 1, "inputs": {"x": i}},
                   {"kind": "node_finished", "node": f"n{i}", "t": t + 0.0005, "duration": 0.0005, "output": i}]
    return events + [{"kind": "run_finished", "t": n * 0.001, "status": "ok", "duration": n * 0.001, "tokens": 0}]


def test_a_large_run_draws_what_is_in_view_and_the_rest_on_scroll(browser, tmp_path):
    trace = tmp_path / "big.jsonl"
    trace.write_text("".join(json.dumps(e) + "\n" for e in _big_run(3000)))
    page = _page(browser, trace, tmp_path, "big")
    assert browser.find_element("id", "graph-summary").text.startswith("3000 nodes, 2980 edges")
    drawn = len(browser.find_elements("css selector", "#graph .node"))
    rows = len(browser.find_elements("css selector", ".tl-row"))
    assert 0 < drawn < 3000 and 0 < rows < 3000
    assert not browser.find_elements("css selector", "#graph .node[data-node='n2999']")
    browser.execute_script("const g = document.getElementById('graph-wrap');"
                           "g.scrollTop = g.scrollHeight; g.scrollLeft = g.scrollWidth;"
                           "const t = document.getElementById('timeline-wrap'); t.scrollTop = t.scrollHeight;")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda d: d.find_elements("css selector", "#graph .node[data-node='n2999']"))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements("css selector", ".bar[data-act='2999']"))
    assert len(browser.find_elements("css selector", "#graph .node")) < 3000
    assert page.errors() == []


def test_the_page_policy_stops_markup_that_got_through(browser, tmp_path):
    """Defence in depth: were some value ever parsed as HTML, its handlers and scripts would not run."""
    page = _page(browser, example_trace("dynamic_map", tmp_path), tmp_path, "policy")
    assert page.errors() == []
    browser.execute_script(
        "const d = document.createElement('div');"
        "d.innerHTML = '<img src=\"data:,x\" onerror=\"window.__handler=1\"><img src=\"http://127.0.0.1:9/x.png\">';"
        "document.body.appendChild(d);"
        "const s = document.createElement('script'); s.textContent = 'window.__script = 1';"
        "document.body.appendChild(s);")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 10).until(lambda d: len(page.errors()) >= 2)
    assert _dom(browser, "return [window.__handler, window.__script]") == [None, None]
    assert any("Content Security Policy" in e for e in page.errors())


def test_a_checkpoint_replayed_with_its_graph_gives_the_full_page(browser, tmp_path):
    module = load_example("batch_eval")
    inputs = [json.loads(line) for line in module.DATA.read_text().splitlines()][:3]
    db = tmp_path / "runs.db"
    anyio.run(lambda: run_batch(module.graph, inputs, backend=module.make_backend(), checkpoint=db,
                                batch_id="arith", id_field="id"))
    out = write_view(db, tmp_path / "replayed.html", run_id="arith/1", graph=module.graph)
    page = open_page(browser, out)
    page.screenshot(tmp_path / "replayed.png")
    assert browser.find_element("id", "note").text.startswith("Made by replaying")
    assert set(_statuses(browser)) == set(module.graph.nodes) and set(_statuses(browser).values()) == {"ok"}
    assert len(browser.find_elements("css selector", "#graph .edge")) == len(module.graph._compile().edges)
    assert len(browser.find_elements("css selector", "#timeline-wrap .bar")) == len(module.graph.nodes)
    assert json.loads(browser.find_element("css selector", "#run-input pre").text)["question"] == \
        inputs[1]["question"]
    assert page.errors() == []
