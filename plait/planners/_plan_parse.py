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
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from plait.errors import ParseError
from plait.executors._tools import ToolRegistry
from plait.planners._plan import LLM_TOOL, Plan

__all__ = ["parse_json_plan", "parse_text_plan", "parse_tool_call", "read_plan_line", "number_step"]

_STEP_LINE = re.compile(r"^\s*#?(E\d+)\s*[:=]\s*([A-Za-z_]\w*)\s*\[(.*)\]\s*$")
_PLAN_LINE = re.compile(r"^\s*(?:\d+[.)]\s*)?Plan\s*\d*\s*:\s*(.*)$", re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_json_plan(text: str, first_id: int = 1) -> Plan:
    """Parse a JSON plan; raise :class:`~plait.ParseError` saying what is wrong.

    A step without an ``"id"`` gets its position's: ``E{first_id}``, ``E{first_id + 1}``, ...
    (``first_id`` follows the evidence of earlier rounds on a replan).
    """
    data = _load_json(text)
    if isinstance(data, list):
        data = {"steps": data}
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        data = {**data, "steps": [number_step(s, first_id + i) for i, s in enumerate(data["steps"])]}
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        lines = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'plan'}: {e['msg']}" for e in exc.errors()[:8]
        )
        raise ParseError(f"the JSON plan does not have the expected shape: {lines}", text) from None


def number_step(step: Any, number: int) -> Any:
    """A JSON step with its positional id ``E{number}`` filled in when it gives none."""
    return {"id": f"E{number}", **step} if isinstance(step, dict) and "id" not in step else step


def _load_json(text: str) -> Any:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        raise ParseError("no JSON object found in the planner output; answer with {\"steps\": [...]}", text)
    try:
        data, _ = json.JSONDecoder().raw_decode(body[min(starts):])
    except json.JSONDecodeError as exc:
        raise ParseError(f"the planner output is not valid JSON: {exc}", text) from None
    return data


def parse_tool_call(tool_name: str, raw_input: str, tools: ToolRegistry) -> dict[str, Any]:
    """Arguments from a ``Tool[input]`` call: a JSON object, or text for the tool's main argument."""
    raw_input = raw_input.strip()
    if raw_input.startswith("{"):
        try:
            data = json.loads(raw_input)
        except json.JSONDecodeError:
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
    m = _STEP_LINE.match(line)
    if not m:
        return None
    sid, name, raw = m.groups()
    name = LLM_TOOL if name.lower() == LLM_TOOL else (tools.get(name).name if name in tools else name)
    return "step", {"id": sid, "tool": name, "args": parse_tool_call(name, raw, tools)}


def parse_text_plan(text: str, tools: ToolRegistry) -> Plan:
    """Parse a ReWOO text plan; raise :class:`~plait.ParseError` when no step line is found."""
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
