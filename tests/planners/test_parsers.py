"""Parsers: parsing, failure messages carrying the raw text, and the constraint each one sends."""

import pytest
from pydantic import BaseModel

from plait import JsonSchema, ParseError
from plait.executors import Choice, Regex
from plait.planners import ChoiceParser, ModelParser, NumberParser, RegexParser, TextParser


class Point(BaseModel):
    x: int
    y: int


def test_text_parser_strips_and_rejects_empty():
    assert TextParser().parse("  hello \n") == "hello"
    with pytest.raises(ParseError) as info:
        TextParser().parse("   ")
    assert info.value.raw == "   "
    assert TextParser().constraint() is None


def test_regex_parser_captures_group_and_sends_regex():
    parser = RegexParser(r"answer: (\w+)")
    assert parser.parse("so the answer: blue.") == "blue"
    assert RegexParser(r"(\d+)", last=True).parse("1 then 2 then 3") == "3"
    assert parser.constraint() == Regex(pattern=r"answer: (\w+)")
    with pytest.raises(ParseError, match="does not match") as info:
        parser.parse("no idea")
    assert info.value.raw == "no idea"
    with pytest.raises(ValueError, match="invalid pattern"):
        RegexParser("(")


def test_number_parser_takes_last_number_and_respects_kind():
    assert NumberParser(int).parse("3 apples and 4 pears make 7") == 7
    assert NumberParser(int, last=False).parse("3 apples and 4 pears make 7") == 3
    assert NumberParser(float).parse("total: 1,234.5") == 1234.5
    assert NumberParser(int).parse("-12") == -12
    with pytest.raises(ParseError, match="whole number"):
        NumberParser(int).parse("2.5")
    with pytest.raises(ParseError, match="no number"):
        NumberParser().parse("seven")
    assert NumberParser(int).constraint() == Regex(pattern=r"-?\d+")
    assert NumberParser(int).output_type is int


def test_choice_parser_is_lenient_on_case_and_punctuation():
    parser = ChoiceParser(["yes", "no"])
    assert parser.parse(" Yes. ") == "yes"
    assert parser.parse("I think no") == "no"
    with pytest.raises(ParseError, match="exactly one of"):
        parser.parse("yes and no")
    assert parser.constraint() == Choice(options=["yes", "no"])


def test_model_parser_finds_json_in_prose_and_reports_fields():
    parser = ModelParser(Point)
    assert parser.parse('Here: ```json\n{"x": 1, "y": 2}\n```') == Point(x=1, y=2)
    assert parser.parse('{"x": 1, "y": 2, "note": "a } brace"}') == Point(x=1, y=2)
    with pytest.raises(ParseError, match="y: Field required"):
        parser.parse('{"x": 1}')
    with pytest.raises(ParseError, match="no JSON object"):
        parser.parse("nothing")
    constraint = parser.constraint()
    assert isinstance(constraint, JsonSchema) and constraint.schema_["required"] == ["x", "y"]
    assert parser.output_type is Point
