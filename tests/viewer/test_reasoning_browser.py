"""The reasoning panels in a real headless browser: what a person sees, no script errors, nothing injected runs."""

import pytest
from browser_harness import open_page
from reasoning_traces import HOSTILE, example_trace, failed_plan_trace, hostile_tree_trace, hostile_vote_trace
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from plait.viewer import write_view


def show(browser, trace):
    """Open the run page ``plait view`` makes of ``trace`` and keep a screenshot; fail on any JS error."""
    page = open_page(browser, write_view(trace, trace.with_suffix(".html")))
    page.screenshot(trace.with_suffix(".png"))
    assert page.errors() == []
    assert browser.find_element(By.CSS_SELECTOR, "#reasoning h2").text == "Reasoning"
    return page


def visible(browser, css):
    return [e for e in browser.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def test_vote_bars_and_winner_are_visible(browser, tmp_path):
    example_trace("self_consistency", tmp_path)
    show(browser, tmp_path / "self_consistency.jsonl")
    bars = visible(browser, ".plait-vote-bar")
    assert [b.get_attribute("data-answer") for b in bars] == ["55", "45"]
    assert bars[0].size["width"] == pytest.approx(3 * bars[1].size["width"], rel=0.05)  # 3 votes against 1
    assert "plait-winner" in bars[0].get_attribute("class")
    assert bars[0].value_of_css_property("fill") != bars[1].value_of_css_property("fill")
    assert [w.text for w in visible(browser, ".plait-vote-winner")] == ["55"]
    assert len(visible(browser, ".plait-sample.plait-undrawn")) == 4 and visible(browser, ".plait-settled")


def test_the_tree_is_visible_and_its_pruned_thoughts_open_on_a_click(browser, tmp_path):
    example_trace("subtask_tree", tmp_path)
    show(browser, tmp_path / "subtask_tree.jsonl")
    tasks = visible(browser, ".plait-task")
    assert [t.get_attribute("data-path") for t in tasks] == ["root", "1", "2"]
    assert "How many legs do 3 spiders have?" in tasks[1].text and "24" in tasks[1].text
    pruned = browser.find_elements(By.CSS_SELECTOR, "[data-path='1'] > .plait-pruned")[0]
    thought = pruned.find_element(By.TAG_NAME, "li")
    assert not thought.is_displayed()  # folded away until asked for
    pruned.find_element(By.TAG_NAME, "summary").click()
    assert thought.is_displayed() and "A spider has 8 legs" in thought.text


def test_the_plan_dag_shows_steps_edges_and_the_failed_calls(browser, tmp_path):
    failed_plan_trace(tmp_path)
    show(browser, tmp_path / "failed_plan.jsonl")
    steps = visible(browser, ".plait-plan-step")
    assert [s.get_attribute("data-step") for s in steps] == ["E1", "E2", "E3", "E4"]
    failed = visible(browser, ".plait-plan-step.plait-step-failed rect")
    ok = visible(browser, ".plait-plan-step.plait-step-ok rect")
    assert len(failed) == 2 and len(ok) == 2
    assert failed[0].value_of_css_property("fill") != ok[0].value_of_css_property("fill")
    assert len(browser.find_elements(By.CSS_SELECTOR, ".plait-plan-edge")) == 1  # E2 -> E3
    assert "ERROR from lookup" in visible(browser, "tr.plait-step-failed[data-step='E2']")[0].text


def test_the_retraction_is_listed(browser, tmp_path):
    example_trace("meetings", tmp_path)
    show(browser, tmp_path / "meetings.jsonl")
    [row] = visible(browser, ".plait-retraction")
    assert "Design=11, Retro=11" in row.text and "Design != Retro" in row.text
    assert "Planning in 9..16" in visible(browser, ".plait-final-model")[0].text


def test_injected_markup_shows_as_text_and_never_runs(browser, tmp_path):
    hostile_vote_trace(tmp_path), hostile_tree_trace(tmp_path), failed_plan_trace(tmp_path)
    where = {"hostile_vote": ".plait-vote-winner", "hostile_tree": ".plait-question", "failed_plan": "tr.plait-step-ok"}
    for name, css in where.items():
        show(browser, tmp_path / f"{name}.jsonl")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 (an onerror=alert(1) that ran would have left an alert open)
        assert browser.find_elements(By.TAG_NAME, "img") == []
        assert [s.get_attribute("id") for s in browser.find_elements(By.TAG_NAME, "script")] == ["plait-data", ""]
        assert HOSTILE in visible(browser, css)[0].text
