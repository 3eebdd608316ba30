"""The one JSON extractor (plait/_json.py) that parsers, plans, streamed plans and solvers share."""

import json
import time

import pytest
from pydantic import BaseModel, ValidationError

from plait._json import MAX_JSON_DEPTH, JsonScanner, clip, find_json, load_json, problem_lines
from plait.executors import _tool_runner
from plait.planners import _parsers, _plan_parse, _streaming, _subtask_model
from plait.solvers import _formulate_check, _formulate_syntax, _propose_node


@pytest.mark.parametrize("text, found", [
    ('Here: ```json\n{"x": 1}\n``` done', '{"x": 1}'),
    ('{"note": "a } brace and a ``` fence"} trailing', '{"note": "a } brace and a ``` fence"}'),
    ('Plan [draft]:\n```json\n{"steps": []}\n```', '{"steps": []}'),  # brackets in prose before the fence
    ('[{"id": "E1"}] and more', '[{"id": "E1"}]'),
    ('no brace :-} then {"a": {"b": [1, 2]}}', '{"a": {"b": [1, 2]}}'),
    ('{"a": "\\"}"}', '{"a": "\\"}"}'),  # an escaped quote does not end the string
    ('{"x": 1}```', '{"x": 1}'),  # a closing fence with no opening one
])
def test_find_json_returns_the_first_complete_value(text, found):
    assert find_json(text) == found


def test_find_json_with_only_braces_looks_inside_arrays_and_reports_what_is_missing():
    assert find_json('[{"x": 1}]', "{") == '{"x": 1}'
    assert find_json('answer: {"steps": [{"id": "E1",') == '{"steps": [{"id": "E1",'  # the decoder says why
    assert find_json("nothing here") is None
    assert find_json("only [brackets]", "{") is None


def test_hostile_replies_are_read_in_linear_time():
    """The scan restarted at every brace (quadratic): 200,000 unclosed braces would take hours."""
    t0 = time.perf_counter()
    assert find_json("{" * 200_000, "{") == "{" * 200_000
    assert find_json('"' + "{}" * 200_000) == "{}" * 200_000  # inside a string that never closes: no value
    assert find_json("```json\n" + " " * 500_000 + "{}\n```") == "{}"
    assert time.perf_counter() - t0 < 30  # ended, not hung


def test_a_never_closed_string_hides_its_brackets():
    assert find_json('"' + "{" * 100) == "{" * 100  # nothing closes: from the first bracket on
    assert JsonScanner(lambda depth, ch: True).feed('"' + "{}" * 100) == []


def test_the_scanner_gives_the_same_values_however_the_text_is_split():
    text = '{"steps": [{"id": "E1", "args": {"q": "}{[\\""}}, {"id": "E2", "args": []}]}'
    whole = JsonScanner(lambda depth, ch: depth == 2 and ch == "{").feed(text)
    assert [json.loads(v)["id"] for v in whole] == ["E1", "E2"]
    for cut in range(len(text) + 1):
        scanner = JsonScanner(lambda depth, ch: depth == 2 and ch == "{")
        assert scanner.feed(text[:cut]) + scanner.feed(text[cut:]) == whole


def test_load_json_refuses_deep_nesting_without_recursing():
    assert load_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(ValueError, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        load_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(ValueError, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        load_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError):
        load_json("{nope")


def test_every_consumer_of_model_json_uses_the_one_extractor():
    for module in (_parsers, _formulate_syntax, _propose_node, _plan_parse):
        assert module.find_json is find_json
    assert issubclass(_subtask_model.ReplyParser, _parsers.ModelParser)  # parses through ModelParser
    for module in (_streaming, _plan_parse, _propose_node):
        assert module.load_json is load_json
    for module in (_parsers, _plan_parse, _formulate_syntax, _formulate_check, _tool_runner):
        assert module.problem_lines is problem_lines
    assert not hasattr(_parsers, "_json_object") and not hasattr(_formulate_syntax, "unfence")


class Numbers(BaseModel):
    values: list[int]
    name: str


def test_problem_lines_are_few_short_and_name_where():
    with pytest.raises(ValidationError) as info:
        Numbers.model_validate({"values": ["x" * 10_000] * 50})
    lines = problem_lines(info.value, "numbers", show_input=True)
    assert len(lines) == 9 and lines[-1] == "and 43 more"  # 50 bad values and a missing name
    assert lines[0].startswith("values.0: Input should be a valid integer") and "(got 'xxx" in lines[0]
    assert all(len(line) < 320 for line in lines)
    with pytest.raises(ValidationError) as info:
        Numbers.model_validate([1])
    assert problem_lines(info.value, "numbers") == ["numbers: Input should be a valid dictionary or instance of "
                                                    "Numbers"]


def test_clip_keeps_short_text_and_marks_a_cut():
    assert clip("short") == "short" and clip("x" * 100, 10) == "xxxxxxx..." and len(clip("y" * 10**6)) == 80
