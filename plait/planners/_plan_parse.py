"""Reading plans from model output: JSON (structured output) and the classic ReWOO text format.

JSON: ``{"steps": [{"tool": "lookup", "args": {...}}, ...]}``; steps are numbered
E1, E2, ... by position (a step may give its ``"id"`` and a ``"thought"``; a bare
list of steps, code fences and text around the object are tolerated).

Text (ReWOO)::

    Plan: find the capital of France.
    #E1 = lookup[{"country": "France", "field": "capital"}]
    Plan: find its population.
    #E2 = search[population of #E1]

A bracketed input that is a JSON object gives the arguments; plain text goes
to the tool's first required argument (``prompt`` for ``llm`` steps).

Model output is read like network input: text longer than
:data:`MAX_PLAN_CHARS` is refused before it is parsed, JSON nested deeper than
:data:`MAX_JSON_DEPTH` is refused, and every pattern here runs in time linear
in the text (no pattern whose backtracking can go quadratic on a long run of
spaces or newlines).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from plait.errors import ParseError
from plait.executors._tools import ToolRegistry
from plait.planners._plan import LLM_TOOL, Plan
from plait.planners._refs import clip

__all__ = ["parse_json_plan", "parse_text_plan", "parse_tool_call", "read_plan_line", "number_step",
           "load_json", "check_plan_size", "MAX_PLAN_CHARS", "MAX_JSON_DEPTH"]

MAX_PLAN_CHARS = 64_000
"""Longest planner output that is parsed at all (a plan of 24 steps with 240-character strings fits)."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON read from a model (a plan is 4 levels deep before its arguments' own)."""

_STEP_LINE = re.compile(r"[ \t]*#?(E[0-9]{1,9})[ \t]*[:=][ \t]*([A-Za-z_]\w*)[ \t]*\[(.*)\][ \t]*")
_PLAN_LINE = re.compile(r"[ \t]*(?:[0-9]+[.)][ \t]*)?Plan[ \t]*(?:[0-9]+[ \t]*)?:[ \t]*(.*)", re.IGNORECASE)


def parse_json_plan(text: str, first_id: int = 1) -> Plan:
    """Parse a JSON plan; raise :class:`~plait.ParseError` saying what is wrong.

    A step without an ``"id"`` gets its position's: ``E{first_id}``, ``E{first_id + 1}``, ...
    (``first_id`` follows the evidence of earlier rounds on a replan).
    """
    check_plan_size(text)
    data = _load_json(text)
    if isinstance(data, list):
        data = {"steps": data}
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        data = {**data, "steps": [number_step(s, first_id + i) for i, s in enumerate(data["steps"])]}
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        lines = "; ".join(
            f"{clip('.'.join(str(x) for x in e['loc']), 60) or 'plan'}: {clip(e['msg'])}" for e in exc.errors()[:8]
        )
        raise ParseError(f"the JSON plan does not have the expected shape: {lines}", text) from None


def number_step(step: Any, number: int) -> Any:
    """A JSON step with its positional id ``E{number}`` filled in when it gives none."""
    return {"id": f"E{number}", **step} if isinstance(step, dict) and "id" not in step else step


def check_plan_size(text: str) -> None:
    """Raise :class:`~plait.ParseError` when ``text`` is longer than :data:`MAX_PLAN_CHARS`."""
    if len(text) > MAX_PLAN_CHARS:
        raise ParseError(f"the plan is {len(text)} characters long; at most {MAX_PLAN_CHARS} are read: "
                         "write a shorter plan", text[:MAX_PLAN_CHARS])


def _load_json(text: str) -> Any:
    body = _unfence(text)
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        raise ParseError("no JSON object found in the planner output; answer with {\"steps\": [...]}", text)
    try:
        return load_json(body[min(starts):], prefix=True)
    except ValueError as exc:
        raise ParseError(f"the planner output is not valid JSON: {exc}", text) from None


def _unfence(text: str) -> str:
    """The body of the first ```/```json fenced block (the text itself when there is none); linear."""
    start = text.find("```")
    if start < 0:
        return text
    start += 3
    if text.startswith("json", start):
        start += 4
    end = text.find("```", start)
    return text[start:] if end < 0 else text[start:end]


def load_json(text: str, *, prefix: bool = False) -> Any:
    """JSON from model text (with ``prefix``: the value at its start, text after it ignored).

    Raise ValueError when it is not JSON or nests deeper than :data:`MAX_JSON_DEPTH`
    (the decoder itself would recurse until Python's stack limit).
    """
    try:
        data = json.JSONDecoder().raw_decode(text)[0] if prefix else json.loads(text)
    except RecursionError:
        raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels") from None
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"it nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, (dict, list)):
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return data


def parse_tool_call(tool_name: str, raw_input: str, tools: ToolRegistry) -> dict[str, Any]:
    """Arguments from a ``Tool[input]`` call: a JSON object, or text for the tool's main argument."""
    raw_input = raw_input.strip()
    if raw_input.startswith("{"):
        try:
            data = load_json(raw_input)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    if tool_name.lower() == LLM_TOOL:
        return {"prompt": raw_input}
    t = tools.get(tool_name)
    param = t.primary_param if t is not None else None
    return {param or "input": _unquote(raw_input)}


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def read_plan_line(line: str, tools: ToolRegistry) -> tuple[str, Any] | None:
    """One line of a ReWOO text plan: ``("thought", text)``, ``("step", {id, tool, args})`` or None."""
    plan_line = _PLAN_LINE.match(line)
    if plan_line:
        return "thought", plan_line.group(1).strip()
    m = _STEP_LINE.fullmatch(line)
    if not m:
        return None
    sid, name, raw = m.groups()
    name = LLM_TOOL if name.lower() == LLM_TOOL else (tools[name].name if name in tools else name)
    return "step", {"id": sid, "tool": name, "args": parse_tool_call(name, raw, tools)}


def parse_text_plan(text: str, tools: ToolRegistry) -> Plan:
    """Parse a ReWOO text plan; raise :class:`~plait.ParseError` when no step line is found."""
    check_plan_size(text)
    steps, thought = [], []
    for line in text.splitlines():
        read = read_plan_line(line, tools)
        if read is None:
            continue
        if read[0] == "thought":
            thought.append(read[1])
        else:
            steps.append({**read[1], "thought": " ".join(thought)})
            thought = []
    if not steps:
        raise ParseError(
            "no plan steps found; write each step as '#E1 = Tool[input]' after a 'Plan: ...' line", text
        )
    return Plan.model_validate({"steps": steps})
