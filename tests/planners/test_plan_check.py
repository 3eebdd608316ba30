"""Plan validation before anything runs (every kind of problem), and the per-tool JSON schema."""

import pytest

from plait.planners import LLM_TOOL, Plan, plan_json_schema, plan_problems


def plan(*steps):
    return Plan.model_validate({"steps": [dict(zip(("id", "tool", "args"), s)) for s in steps]})


def test_a_valid_plan_has_no_problems(registry):
    p = plan(("E1", "quote", {"symbol": "AAA"}), ("E2", "quote", {"symbol": "BBB"}),
             ("E3", "total", {"values": ["#E1.price", "#E2.price"]}), ("E4", "scale", {"value": "#E3"}),
             ("E5", "llm", {"prompt": "Summarise #E4"}), ("E6", "count", {"text": "price #E1.price"}))
    assert plan_problems(p, registry) == []


@pytest.mark.parametrize("steps, expected", [
    ((), ["the plan has no steps; give at least one step"]),
    ((("E1", "quote", {"symbol": "A"}), ("E1", "quote", {"symbol": "B"})),
     ["step E1: the id E1 is used twice; number the steps E1, E2, ..."]),
    ((("E1", "wikipedia", {"q": "x"}),),
     ["step E1: unknown tool 'wikipedia'; use one of ['quote', 'scale', 'count', 'total', 'llm']"]),
    ((("E1", "quote", {"symbol": "A", "venue": "NY"}),),
     ["step E1: quote has no argument 'venue'; its arguments are ['symbol']"]),
    ((("E1", "scale", {"factor": 3}),), ["step E1: scale needs argument 'value'"]),
    ((("E1", "scale", {"value": "lots"}),),
     ["step E1: argument 'value' of scale must be float: Input should be a valid number, unable to parse "
      "string as a number (got 'lots')"]),
    ((("E1", "scale", {"value": "#E1 + 1"}),),
     ["step E1: refers to its own result #E1; use an earlier step's result",
      "step E1: argument 'value' of scale must be float: Input should be a valid number, unable to parse "
      "string as a number (got '#E1 + 1') (a reference inside text is pasted as text)"]),
    ((("E1", "scale", {"value": "#E7"}),), ["step E1: refers to #E7, which no step defines"]),
    ((("E1", "scale", {"value": "#E2"}), ("E2", "quote", {"symbol": "A"})),
     ["step E1: refers to #E2, a later step; reorder so that E2 comes before E1"]),
    ((("E1", "quote", {"symbol": "A"}), ("E2", "scale", {"value": "#E1.cost"})),
     ["step E2: argument 'value' uses #E1.cost, but quote returns Quote whose fields are ['symbol', 'price']"]),
    ((("E1", "count", {"text": "abc"}), ("E2", "scale", {"value": "#E1.size"})),
     ["step E2: argument 'value' uses #E1.size, but count returns a plain int with no fields"]),
])
def test_each_problem_is_reported_with_the_step_it_concerns(registry, steps, expected):
    assert plan_problems(plan(*steps), registry) == expected


def test_cycles_are_named(registry):
    p = plan(("E1", "scale", {"value": "#E2"}), ("E2", "scale", {"value": "#E1"}))
    problems = plan_problems(p, registry)
    assert "steps E1 -> E2 -> E1 form a cycle; a step can only use results of steps before it" in problems
    assert "step E1: refers to #E2, a later step; reorder so that E2 comes before E1" in problems


def test_all_problems_are_listed_at_once(registry):
    p = plan(("E1", "nope", {}), ("E2", "scale", {"value": "#E9"}), ("E3", "quote", {}))
    assert len(plan_problems(p, registry)) == 3


def test_references_to_earlier_evidence_are_allowed_but_its_ids_are_taken(registry):
    p = plan(("E3", "scale", {"value": "#E2"}))
    assert plan_problems(p, registry, known=["E1", "E2"]) == []
    clash = plan(("E2", "scale", {"value": "#E1"}))
    assert plan_problems(clash, registry, known=["E1", "E2"]) == [
        "step E2: E2 is already taken by earlier evidence; continue numbering after E2"]


def test_json_schema_types_arguments_per_tool_and_admits_references(registry):
    schema = plan_json_schema(registry)
    variants = schema["properties"]["steps"]["items"]["anyOf"]
    assert [v["properties"]["tool"]["const"] for v in variants] == ["quote", "scale", "count", "total", LLM_TOOL]
    scale = variants[1]["properties"]["args"]
    assert scale["required"] == ["value"] and scale["additionalProperties"] is False
    value = scale["properties"]["value"]["anyOf"]
    assert value[0]["type"] == "number" and value[1] == {"$ref": "#/$defs/Ref"}
    # references are bounded like plan_problems bounds them: 9-digit ids, 8 fields of 64 characters
    assert schema["$defs"]["Ref"]["pattern"] == r"^#E[0-9]{1,9}(\.-?[A-Za-z0-9_]{1,64}){0,8}$"
    assert schema["properties"]["steps"]["maxItems"] == 24 == plan_json_schema(registry, max_steps=24)[
        "properties"]["steps"]["maxItems"]
    assert plan_json_schema(registry, max_steps=3)["properties"]["steps"]["maxItems"] == 3
    # steps are numbered by position (no id to repeat) and the thought is optional
    assert all("id" not in v["properties"] and v["required"] == ["tool", "args"] for v in variants)
    assert variants[0]["properties"]["thought"]["maxLength"] > 0


def test_json_schema_lifts_nested_model_definitions_to_the_root():
    from pydantic import BaseModel

    from plait import tool
    from plait.executors import ToolRegistry

    class Point(BaseModel):
        x: float
        y: float

    @tool
    def distance(a: Point, b: Point) -> float:
        """Distance between two points."""
        return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5

    schema = plan_json_schema(ToolRegistry([distance]), include_llm=False)
    args = schema["properties"]["steps"]["items"]["anyOf"][0]["properties"]["args"]
    assert args["properties"]["a"]["anyOf"][0] == {"$ref": "#/$defs/distance__Point"}
    assert set(schema["$defs"]["distance__Point"]["properties"]) == {"x", "y"}
    assert "$defs" not in args
