"""Plans from model output: the JSON format and the classic ReWOO text format; references."""

import pytest

from plait import ParseError
from plait.planners import parse_json_plan, parse_text_plan, Plan, PlanStep, Ref
from plait.planners._plan import find_refs, whole_ref

STEPS = [
    {"id": "E1", "thought": "price of AAA", "tool": "quote", "args": {"symbol": "AAA"}},
    {"id": "E2", "thought": "double it", "tool": "scale", "args": {"value": "#E1.price", "factor": 2}},
]


def test_json_plan_parses_into_typed_steps_with_dependencies():
    import json

    plan = parse_json_plan(json.dumps({"steps": STEPS}))
    assert plan.ids == ["E1", "E2"]
    assert plan.steps[1] == PlanStep(id="E2", tool="scale", args={"value": "#E1.price", "factor": 2},
                                     thought="double it")
    assert plan.dependencies() == {"E1": set(), "E2": {"E1"}}
    assert plan.steps[1].refs() == [Ref("E1", ("price",))]


@pytest.mark.parametrize("wrap", [
    lambda j: j,
    lambda j: f"Here is the plan:\n```json\n{j}\n```\nDone.",
    lambda j: f"Sure! {j} hope it helps",
])
def test_json_plan_tolerates_fences_and_text_around(wrap):
    import json

    assert parse_json_plan(wrap(json.dumps({"steps": STEPS}))).ids == ["E1", "E2"]


def test_json_plan_accepts_a_bare_list_of_steps():
    import json

    assert parse_json_plan(json.dumps(STEPS)).steps[0].tool == "quote"


def test_json_steps_without_ids_are_numbered_by_position():
    import json

    bare = [{k: v for k, v in s.items() if k not in ("id", "thought")} for s in STEPS]
    plan = parse_json_plan(json.dumps({"steps": bare}))
    assert plan.ids == ["E1", "E2"] and plan.dependencies() == {"E1": set(), "E2": {"E1"}}
    assert plan.steps[0].thought == ""
    assert parse_json_plan(json.dumps(bare), first_id=4).ids == ["E4", "E5"]  # a replan continues the numbering
    mixed = [bare[0], {**bare[1], "id": "E7"}]  # a step that names its id keeps it
    assert parse_json_plan(json.dumps({"steps": mixed})).ids == ["E1", "E7"]


def test_json_plan_errors_say_what_is_wrong():
    with pytest.raises(ParseError, match="no JSON object found") as err:
        parse_json_plan("I would first look up the price.")
    assert err.value.raw == "I would first look up the price."
    with pytest.raises(ParseError, match="not valid JSON"):
        parse_json_plan('{"steps": [{"id": "E1",')
    with pytest.raises(ParseError, match=r"steps\.0\.tool: Field required"):
        parse_json_plan('{"steps": [{"id": "E1", "args": {}}]}')
    with pytest.raises(ParseError, match=r"steps\.0\.id: String should match pattern"):
        parse_json_plan('{"steps": [{"id": "step1", "tool": "quote", "args": {}}]}')


REWOO = """Plan: Get the price of AAA.
#E1 = Quote[AAA]
Plan: Get the price of BBB.
#E2 = quote["BBB"]
Plan: Add both prices.
#E3 = total[{"values": ["#E1.price", "#E2.price"]}]
Plan: Explain the result.
#E4 = LLM[Is #E3 a lot of money?]
"""


def test_rewoo_text_plan_parses_thoughts_inputs_and_json_arguments(registry):
    plan = parse_text_plan(REWOO, registry)
    assert [(s.id, s.tool) for s in plan.steps] == [("E1", "quote"), ("E2", "quote"), ("E3", "total"), ("E4", "llm")]
    assert plan.steps[0].args == {"symbol": "AAA"}  # text input goes to the first required argument
    assert plan.steps[1].args == {"symbol": "BBB"}  # quotes around text are dropped
    assert plan.steps[2].args == {"values": ["#E1.price", "#E2.price"]}
    assert plan.steps[3].args == {"prompt": "Is #E3 a lot of money?"}
    assert plan.steps[2].thought == "Add both prices."
    assert plan.dependencies() == {"E1": set(), "E2": set(), "E3": {"E1", "E2"}, "E4": {"E3"}}


def test_rewoo_text_plan_round_trips_through_to_text(registry):
    plan = parse_text_plan(REWOO, registry)
    assert parse_text_plan(plan.to_text(), registry) == plan


def test_rewoo_text_without_steps_is_a_parse_error(registry):
    with pytest.raises(ParseError, match=r"no plan steps found; write each step as '#E1 = Tool\[input\]'"):
        parse_text_plan("Plan: think hard.\nThen answer.", registry)


def test_unknown_tool_in_text_keeps_its_input_for_validation(registry):
    plan = parse_text_plan("#E1 = Wikipedia[Paris]", registry)
    assert plan.steps[0].tool == "Wikipedia" and plan.steps[0].args == {"input": "Paris"}


def test_references_are_found_anywhere_in_arguments():
    args = {"a": "#E1", "b": ["x #E2.price y", {"c": "#E3.items.0"}], "d": 5}
    assert list(find_refs(args)) == [Ref("E1"), Ref("E2", ("price",)), Ref("E3", ("items", "0"))]
    assert whole_ref(" #E3.items.0 ") == Ref("E3", ("items", "0"))
    assert whole_ref("cost #E1") is None and whole_ref(7) is None
    assert str(Ref("E2", ("price",))) == "#E2.price"


def test_plan_step_lookup_names_the_known_steps():
    plan = Plan(steps=[PlanStep(id="E1", tool="quote", args={})])
    with pytest.raises(KeyError, match=r"no step 'E9' in the plan; steps are \['E1'\]"):
        plan.step("E9")
