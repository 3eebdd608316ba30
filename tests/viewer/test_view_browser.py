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
    hrefs = [a.get_dom_attribute("href") for a in links]
    assert all((out.parent / href).is_file() for href in hrefs)
    assert page.errors() == []
    run_page = open_page(browser, out.parent / hrefs[0])
    assert browser.find_element("id", "note").text.startswith("Made from a checkpoint")
    assert set(_statuses(browser)) == set(module.graph.nodes)
    assert set(_statuses(browser).values()) == {"ok"}
    assert browser.find_elements("css selector", "#timeline-wrap") == []  # a checkpoint has no start times
    assert run_page.errors() == []
