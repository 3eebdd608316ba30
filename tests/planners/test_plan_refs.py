"""What a ``#E2.a.b`` reference may reach: declared fields of data, checked against types and read as data."""

import dataclasses
import json
from typing import Optional, TypedDict

import anyio
import pytest
from pydantic import BaseModel

from plait import Graph, PlanAndExecute, ScriptedBackend, tool
from plait.executors import ToolRegistry
from plait.planners import Plan, plan_problems
from plait.planners._plan import Ref, UnresolvedReference, resolve_ref


class Leg(BaseModel):
    city: str
    hours: float


class Trip(BaseModel):
    name: str
    legs: list[Leg]
    tags: dict[str, int]
    pair: tuple[int, str]
    note: Optional[Leg] = None


class Facts(TypedDict):
    size: int
    label: str


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Opaque:
    """Not data: a reference cannot read its attributes."""

    secret = "hidden"


@tool
def trip() -> Trip:
    """A trip."""
    return Trip(name="t", legs=[Leg(city="Oslo", hours=2)], tags={"a": 1}, pair=(1, "x"))


@tool
def facts() -> Facts:
    """Facts."""
    return {"size": 3, "label": "l"}


@tool
def point() -> Point:
    """A point."""
    return Point(1.0, 2.0)


@tool
def opaque() -> Opaque:
    """An object."""
    return Opaque()


@tool
def anything():
    """Untyped: any path is left to the run-time check."""
    return {"k": [1, 2]}


@tool
def echo(text: str) -> str:
    """Echo."""
    return text


TOOLS = ToolRegistry([trip, facts, point, opaque, anything, echo])


def problems_of(producer, ref):
    plan = Plan.model_validate({"steps": [{"id": "E1", "tool": producer, "args": {}},
                                          {"id": "E2", "tool": "echo", "args": {"text": f"see {ref}"}}]})
    return plan_problems(plan, TOOLS)


@pytest.mark.parametrize("producer, ref", [
    ("trip", "#E1.name"), ("trip", "#E1.legs.0.city"), ("trip", "#E1.legs.-1.hours"), ("trip", "#E1.tags.a"),
    ("trip", "#E1.pair.1"), ("trip", "#E1.note.city"), ("facts", "#E1.label"), ("point", "#E1.y"),
    ("anything", "#E1.k.0"), ("anything", "#E1.__class__"), ("opaque", "#E1"),
])
def test_paths_the_declared_type_has_pass_the_check(producer, ref):
    assert problems_of(producer, ref) == []


@pytest.mark.parametrize("producer, ref, why", [
    ("trip", "#E1.__class__", ", but trip returns Trip whose fields are ['name', 'legs', 'tags', 'pair', 'note']"),
    ("trip", "#E1.legs.first", ", but #E1.legs is list[Leg], indexed by position (0, 1, ..., -1), not by 'first'"),
    ("trip", "#E1.legs.0.__init__", ", but #E1.legs.0 is Leg whose fields are ['city', 'hours']"),
    ("trip", "#E1.name.upper", ", but #E1.name is a plain str with no fields"),
    ("trip", "#E1.pair.2", ", but #E1.pair is tuple[int, str] of 2 items, which has no index 2"),
    ("trip", "#E1.note.__dict__", ", but #E1.note is Leg whose fields are ['city', 'hours']"),
    ("facts", "#E1.__globals__", ", but facts returns Facts whose keys are ['size', 'label']"),
    ("point", "#E1.__dict__", ", but point returns Point whose fields are ['x', 'y']"),
    ("opaque", "#E1.secret", ", but opaque returns Opaque, whose attributes a reference cannot read; "
                             "reference the whole result"),
    ("anything", "#E1.a.b.c.d.e.f.g.h.i", ": it names 9 fields; a reference may name at most 8"),
    ("anything", "#E1." + "x" * 65, ": its field 'xxxxxxxxxxxxxxxxx...' is 65 characters long; at most 64 are "
                                    "allowed"),
])
def test_paths_the_declared_type_lacks_are_plan_problems(producer, ref, why):
    shown = ref if len(ref) <= 80 else ref[:77] + "..."
    assert problems_of(producer, ref) == [f"step E2: argument 'text' uses {shown}{why}"]


@pytest.mark.parametrize("value, path, error", [
    ({"k": 1}, ("__class__",), "#E1.__class__: dict value {'k': 1} has no field '__class__'"),
    ([1, 2], ("__len__",), "#E1.__len__: list value [1, 2] is indexed by position (0, 1, ..., -1), not by '__len__'"),
    ([1, 2], ("2",), "#E1.2: list value [1, 2] of 2 items has no index 2"),
    (Point(1, 2), ("__dict__",), "#E1.__dict__: Point value has no field '__dict__'; its fields are ['x', 'y']"),
    (Opaque(), ("secret",), "#E1.secret: Opaque value has no fields a reference can read; reference the whole result"),
    ("text", ("__class__",), "#E1.__class__: str value has no fields a reference can read; reference the whole "
                             "result"),
    (Leg(city="a", hours=1), ("model_fields",), "#E1.model_fields: Leg value has no field 'model_fields'; its "
                                                "fields are ['city', 'hours']"),
    ({"k": 1}, ("k",) * 9, "#E1.k.k.k.k.k.k.k.k.k cannot be used: it names 9 fields; a reference may name at most 8"),
])
def test_at_run_time_paths_are_read_as_data_only(value, path, error):
    with pytest.raises(UnresolvedReference) as info:
        resolve_ref(Ref("E1", path), {"E1": value})
    assert str(info.value) == error


def test_at_run_time_declared_fields_keys_and_indices_are_read():
    value = {"trip": Trip(name="t", legs=[Leg(city="Oslo", hours=2)], tags={}, pair=(1, "x")), "p": Point(3, 4)}
    assert resolve_ref(Ref("E1", ("trip", "legs", "-1", "city")), {"E1": value}) == "Oslo"
    assert resolve_ref(Ref("E1", ("p", "y")), {"E1": value}) == 4


def test_references_into_earlier_rounds_are_checked_against_the_tool_that_produced_them():
    first = {"steps": [{"tool": "trip", "args": {}}]}
    bad = {"steps": [{"tool": "echo", "args": {"text": "#E1.__class__"}}]}
    good = {"steps": [{"tool": "echo", "args": {"text": "#E1.legs.0.city"}}]}
    backend = ScriptedBackend([json.dumps(first), "Replan: need the city", json.dumps(bad), json.dumps(good),
                               "Answer: Oslo"])
    graph = Graph("trips")
    graph.add(PlanAndExecute(TOOLS, max_replans=1))
    out = anyio.run(lambda: graph.run({"task": "t"}, backend=backend)).output
    assert out.evidence["E2"] == "Oslo"
    repair = backend.requests[3].prompt_text()
    assert ("- step E2: argument 'text' uses #E1.__class__, but trip returns Trip whose fields are ['name', "
            "'legs', 'tags', 'pair', 'note']") in repair
