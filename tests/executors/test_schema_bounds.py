"""Every JSON schema plait sends to a backend is bounded, and a looping model is stopped by it, not by max_tokens.

The walk covers each schema the library builds (plan, subtask answer and split, CSP, propose, the JSON parser
of a pydantic model). The looping "model" drives xgrammar's own matcher (the engine vLLM compiles schemas
with) one character per token, the worst case for a loop's length in tokens.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any, Literal

import anyio
import pytest
from pydantic import BaseModel, Field

from plait import BackendError, CSP, Request, SamplingParams, tool
from plait.executors import ToolRegistry
from plait.planners import ModelParser
from plait.executors import JsonSchema
from plait.executors._base import bound_schema
from plait.planners._plan_check import plan_json_schema
from plait.planners._subtask_model import ReplyParser
from plait.solvers import Formulate
from plait.solvers._propose_node import _schema as propose_schema

MAX_INTEGER = 10**9  # plait.executors._schema_bounds.MAX_INTEGER
_UNBOUNDED_REPEAT = re.compile(r"(?<!\\)[*+]|\{\d+,\}")
_TYPING = {"type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const", "not", "properties", "items", "prefixItems"}


def unbounded(node: Any, path: str = "$") -> list[str]:
    """Every place of a schema where a value can grow without end, as JSON paths."""
    if node is True:
        return [f"{path}: any value"]
    if not isinstance(node, dict):
        return []
    found = []
    if not (_TYPING & node.keys()):
        found.append(f"{path}: any value")
    types = node.get("type")
    types = set(types) if isinstance(types, list) else {types}
    if "string" in types and not ({"maxLength", "enum", "const"} & node.keys()):
        bounded_pattern = "pattern" in node and not _UNBOUNDED_REPEAT.search(node["pattern"])
        if not bounded_pattern and node.get("format") not in ("date", "uuid", "ipv4"):
            found.append(f"{path}: string")
    if "array" in types and "maxItems" not in node and node.get("items") is not False:
        found.append(f"{path}: array")
    if types & {"integer", "number"} and not ({"minimum", "exclusiveMinimum"} & node.keys()
                                              and {"maximum", "exclusiveMaximum"} & node.keys()):
        found.append(f"{path}: {'/'.join(sorted(types & {'integer', 'number'}))}")
    if ("object" in types or "properties" in node) and node.get("additionalProperties") is not False:
        names = node.get("propertyNames", {})
        if "maxProperties" not in node or unbounded({"type": "string", **names}):
            found.append(f"{path}: object keys")
    for key, value in node.items():
        if key in ("properties", "$defs", "patternProperties"):
            for name, sub in value.items():
                found += unbounded(sub, f"{path}.{name}")
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for i, sub in enumerate(value):
                found += unbounded(sub, f"{path}.{key}[{i}]")
        elif key in ("items", "additionalProperties", "not", "then", "else") and value is not False:
            found += unbounded(value, f"{path}.{key}")
    return found


class Address(BaseModel):
    street: str
    zip_code: str = Field(pattern=r"^[0-9]{5}$")


class Person(BaseModel):
    name: str
    age: int
    height: float | None = None
    tags: list[str] = []
    scores: dict[str, int] = {}
    home: Address
    kind: Literal["a", "b"] = "a"
    born: datetime.date | None = None
    seen: datetime.datetime | None = None
    extra: Any = None


@tool
def search(query: str, limit: int = 5) -> list[str]:
    """Search."""
    return []


@tool
def total(values: list[float], weights: dict[str, float] | None = None) -> float:
    """Sum."""
    return 0.0


@tool
def locate(person: Person) -> str:
    """Where a person lives."""
    return ""


def big_csp() -> CSP:
    return CSP(variables=[{"name": "A", "domain": {"min": 1, "max": 3}},
                          {"name": "B", "domain": {"min": 0, "max": 5000}},
                          {"name": "C", "domain": [f"colour{i}" for i in range(300)]}],
               constraints=["A != B"])


SCHEMAS = {
    "plan": lambda: plan_json_schema(ToolRegistry([search, total, locate])),
    "subtask answer": lambda: ReplyParser(allow_split=False, max_breadth=3).constraint().schema_,
    "subtask split": lambda: ReplyParser(allow_split=True, max_breadth=3, max_tokens=200).constraint().schema_,
    "CSP (Formulate)": lambda: Formulate(syntax="json").sampling.constraint.schema_,
    "propose": lambda: propose_schema(big_csp(), ["A", "B", "C"]),
    "JSON parser": lambda: ModelParser(Person).constraint().schema_,
}


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_the_library_sends_is_bounded(name):
    schema = SCHEMAS[name]()
    assert unbounded(schema) == []


def test_the_walk_finds_what_is_unbounded():
    """The check itself: each kind of unbounded part is named (so a passing walk means something)."""
    found = unbounded(Person.model_json_schema())
    for part in ("name: string", "age: integer", "height.anyOf[0]: number", "tags: array", "tags.items: string",
                 "scores: object keys", "scores.additionalProperties: integer", "extra: any value",
                 "Address.street: string", "seen.anyOf[0]: string"):
        assert any(f.endswith(part) for f in found), part
    assert not any("zip_code" in f or "kind" in f for f in found)  # a bounded pattern and a const are bounded


def test_bound_schema_bounds_numbers_objects_and_any_keeping_existing_limits():
    class Item(BaseModel):
        count: int = Field(ge=0)
        big: int = Field(ge=5 * MAX_INTEGER)
        ratio: float = Field(le=1.0)
        meta: dict[str, Any]
        raw: Any

    schema = bound_schema(Item.model_json_schema(), max_string=10, max_items=3, max_integer=100)
    props = schema["properties"]
    assert (props["count"]["minimum"], props["count"]["maximum"]) == (0, 100)
    assert props["big"]["maximum"] >= props["big"]["minimum"]  # never an empty range
    assert (props["ratio"]["minimum"], props["ratio"]["maximum"]) == (-100, 1.0)
    assert props["meta"]["maxProperties"] == 3 and props["meta"]["propertyNames"] == {"maxLength": 10}
    assert schema["additionalProperties"] is False
    assert unbounded(schema) == [] and "anyOf" in props["raw"]


def test_subtask_strings_scale_with_max_tokens():
    from plait.planners._subtask_model import reply_string_bounds

    thought, answer, task = reply_string_bounds(200)
    assert thought + answer < 200 and task < 200  # a loop in the thought, then in the answer, still fits
    schema = ReplyParser(allow_split=True, max_breadth=3, max_tokens=200).constraint().schema_
    split = schema["anyOf"][1]["properties"]
    assert split["thought"]["maxLength"] == thought
    needs = [item["properties"]["needs"] for item in split["subtasks"]["prefixItems"]]
    assert [n["maxItems"] for n in needs] == [0, 1, 2]  # subtask i may need only subtasks 1..i-1
    assert needs[2]["items"]["maximum"] == 2


# --- a looping model on xgrammar's matcher ---------------------------------------------------------------

_VOCAB = [chr(i) for i in range(32, 127)] + ["</s>"]  # one character per token: the worst case for a loop
_EOS = len(_VOCAB) - 1
_CLOSE_FIRST = ["</s>", '"', "]", "}", ",", ":", "{", "[", *"abcdefghijklmnopqrstuvwxyz0123456789"]


@pytest.fixture(scope="module")
def compiler():
    xgrammar = pytest.importorskip("xgrammar")
    return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo(_VOCAB, stop_token_ids=[_EOS]))


def looping_model(compiler, schema: dict, loop, max_tokens: int) -> tuple[str, bool]:
    """Greedy decoding of a model that always wants ``loop(text)`` next and otherwise closes what is open.

    Compiled as vLLM compiles with ``disable_any_whitespace``. Returns the text and whether the grammar
    ended it (False: ``max_tokens`` did).
    """
    import xgrammar

    matcher = xgrammar.GrammarMatcher(compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                                   separators=(",", ":")))
    out: list[str] = []
    for _ in range(max_tokens):
        if matcher.is_terminated():
            break
        text = "".join(out)
        token = next(t for t in [loop(text), *_CLOSE_FIRST] if matcher.accept_token(_VOCAB.index(t)))
        out.append(token)
    return "".join(t for t in out if t != "</s>"), matcher.is_terminated()


def test_a_model_looping_in_the_thought_ends_within_max_tokens_with_a_parsable_reply(compiler):
    """smollm2-135m wrote ``12*2 = `` in the thought until max_tokens; the schema now ends the string."""
    cycle = "12*2 = "
    parser = ReplyParser(allow_split=False, max_breadth=3, max_tokens=200)
    text, ended = looping_model(compiler, parser.constraint().schema_, lambda t: cycle[len(t) % len(cycle)], 200)
    assert ended, text
    reply = parser.parse(text)
    assert "12*2 = 12*2" in reply.thought and reply.answer is not None


def test_a_model_looping_on_digits_ends_within_max_tokens_with_a_valid_csp(compiler):
    """A reply to the CSP schema ran to 2,048 tokens on one integer (``27000...0``); now it has 10 digits."""
    schema = Formulate(syntax="json").sampling.constraint.schema_
    text, ended = looping_model(compiler, schema, lambda t: "0" if t[-1:].isdigit() else "2", 2048)
    assert ended, text[-200:]
    csp = CSP.model_validate_json(text)
    assert csp.variables and all(abs(v) <= MAX_INTEGER for v in csp.variables[0].values[:1])
    assert re.search(r"2000000000?\b", text)  # it did loop, and was cut at the integer bound


def test_json_schema_of_bounds_by_default():
    assert unbounded(JsonSchema.of(Person).schema_) == []


def test_the_in_process_engine_refuses_what_xgrammar_cannot_enforce_before_starting(monkeypatch):
    """plait's engine pins xgrammar (no silent fallback to another library): say so before any request is sent."""
    pytest.importorskip("vllm")
    from plait.executors import VLLMBackend

    backend = VLLMBackend("smollm2-135m")

    async def no_engine():
        raise AssertionError("the engine was started")

    monkeypatch.setattr(backend, "start", no_engine)
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^a+$", "maxLength": 3}}}
    request = Request(prompt="Code:", params=SamplingParams(constraint=JsonSchema(schema=schema)), tag="coder")
    with pytest.raises(BackendError, match=r"request 0 \(coder\): invalid JsonSchema .*xgrammar cannot enforce"):
        anyio.run(backend.generate, [request])


def test_the_plan_schema_is_sized_to_the_planners_max_tokens():
    """At 320 tokens smollm2-135m repeated one 240-character step until the limit cut the plan off."""
    from plait.planners._planner import Planner

    registry = ToolRegistry([search, total])
    small = Planner(registry, sampling=SamplingParams(max_tokens=320)).sampling.constraint.schema_
    steps = small["properties"]["steps"]
    assert steps["maxItems"] == 8 and unbounded(small) == []
    variant = steps["items"]["anyOf"][0]["properties"]
    assert variant["thought"]["maxLength"] == 80
    assert variant["args"]["properties"]["query"]["anyOf"][0]["maxLength"] == 80
    assert plan_json_schema(registry)["properties"]["steps"]["maxItems"] == 24  # the default 1,024 tokens


# --- any schema a model of the user's could have: bounded after bound_schema, and xgrammar compiles it ----------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LEAVES = st.sampled_from([
    {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}, {},
    {"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}, {"type": "integer", "minimum": 3},
    {"type": "string", "pattern": "^[a-z]{1,3}$"}, {"type": "array"}, {"type": "object"}, {"title": "Anything"},
])
_NAMES = st.text("abcdefgh", min_size=1, max_size=4)


def _containers(inner):
    return st.one_of(
        inner.map(lambda s: {"type": "array", "items": s}),
        inner.map(lambda s: {"type": "array", "items": s, "minItems": 1}),
        st.dictionaries(_NAMES, inner, min_size=1, max_size=3).map(
            lambda props: {"type": "object", "properties": props, "required": sorted(props)[:1]}),
        inner.map(lambda s: {"type": "object", "additionalProperties": s}),
        st.lists(inner, min_size=2, max_size=3).map(lambda options: {"anyOf": options}),
        inner.map(lambda s: {"anyOf": [s, {"type": "null"}], "default": None}),
    )


SCHEMAS_OF_ANY_SHAPE = st.recursive(_LEAVES, _containers, max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS_OF_ANY_SHAPE)
def test_bound_schema_leaves_nothing_unbounded_in_any_schema(schema):
    bounded = bound_schema(schema)
    assert unbounded(bounded) == [], json.dumps(bounded)
    try:
        import xgrammar
    except ImportError:
        return
    from plait.executors._constraints import _xgrammar_cannot_enforce

    xgrammar.Grammar.from_json_schema(json.dumps(bounded), any_whitespace=False)  # still a schema it can enforce
    assert not _xgrammar_cannot_enforce(bounded)  # and that plait's xgrammar-pinned engine accepts
