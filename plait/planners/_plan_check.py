"""Checking a plan against the tool registry before anything runs, and the plan's JSON schema.

:func:`plan_problems` lists the problems of a plan (each naming its step) so
that a repair round can fix them all at once: too many steps, no steps,
duplicate ids, unknown tools, unknown/missing/ill-typed arguments, references
to missing or later steps, reference paths that the referenced step's
declared result type does not have (see :mod:`plait.planners._refs`), and a
cycle. Every check is linear in the plan's size: a plan written by a hostile
model is checked in milliseconds (listing every cycle, as an earlier version
did, took minutes and gigabytes on 11 steps that all reference each other),
and the list is capped (:func:`cap_problems`) before it goes into a prompt.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from plait.executors._base import bound_schema
from plait.executors._tools import Tool, ToolRegistry, tool
from plait.planners._plan import LLM_TOOL, Plan, PlanStep, Ref, find_refs, whole_ref
from plait.planners._refs import MAX_FIELD_CHARS, MAX_REF_FIELDS, clip, path_problem, shape_problem, type_name

__all__ = ["plan_problems", "plan_json_schema", "llm_tool", "cap_problems", "MAX_STEPS", "MAX_PROBLEMS",
           "MAX_PROBLEM_CHARS", "MAX_STRING"]

MAX_STEPS = 24
"""Default longest plan (``max_steps=``): a longer one is a plan problem (the widest benchmark task takes 17)."""
MAX_PROBLEMS = 20
"""Most problems listed for one plan (then "... and N more"): a repair prompt stays small whatever the plan."""
MAX_PROBLEM_CHARS = 300
"""Longest single problem line: model-written names and values are clipped inside it."""
MAX_STRING = 240
"""Longest free string a constrained planner may write: small models can loop inside a string forever."""


def _llm(prompt: str) -> str:
    """Ask the language model: reason over earlier results (reference them in the prompt) and answer briefly."""
    raise NotImplementedError("llm steps are run by the executor through the run's backend")


# The pseudo-tool of reasoning steps: it gives `llm` an argument model, a schema and a description like any
# tool. Users may not register a tool named "llm", so it is built under another name and renamed.
llm_tool: Tool = tool(_llm, name="llm_step")
llm_tool.name = LLM_TOOL


def _tool_for(name: str, tools: ToolRegistry) -> Tool | None:
    return llm_tool if name.lower() == LLM_TOOL else tools.get(name)


def plan_problems(plan: Plan, tools: ToolRegistry, known: Iterable[str] | Mapping[str, str] = (), *,
                  max_steps: int = MAX_STEPS) -> list[str]:
    """Everything wrong with ``plan`` (at most :data:`MAX_PROBLEMS` lines); empty when it may run.

    ``known``: evidence ids from earlier rounds, or a mapping of them to the
    tool that produced each (references into them are then type-checked too).
    A plan of more than ``max_steps`` steps gets that one problem.
    """
    if len(plan.steps) > max_steps:
        return [f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed: "
                "leave out steps the task does not need"]
    if not plan.steps:
        return ["the plan has no steps; give at least one step"]
    known = dict(known) if isinstance(known, Mapping) else dict.fromkeys(known, "")
    producers = {**known, **{s.id: s.tool for s in reversed(plan.steps)}}
    last_known = max(known, key=_num, default="")
    problems: list[str] = []
    position: dict[str, int] = {}
    for i, step in enumerate(plan.steps):
        if step.id in position:
            problems.append(f"step {step.id}: the id {step.id} is used twice; number the steps E1, E2, ...")
        elif step.id in known:
            problems.append(f"step {step.id}: {step.id} is already taken by earlier evidence; "
                            f"continue numbering after {last_known}")
        position.setdefault(step.id, i)
    problems += _cycle(plan)
    for i, step in enumerate(plan.steps):
        problems += _reference_problems(step, i, position, producers, tools)
        t = _tool_for(step.tool, tools)
        if t is None:
            problems.append(f"step {step.id}: unknown tool {clip(repr(step.tool), 40)}; "
                            f"use one of {[*tools.names, LLM_TOOL]}")
        else:
            problems += _argument_problems(step, t)
    return cap_problems(problems)


def cap_problems(problems: Sequence[str]) -> list[str]:
    """At most :data:`MAX_PROBLEMS` problems of at most :data:`MAX_PROBLEM_CHARS` each, and how many were left out."""
    out = [clip(p, MAX_PROBLEM_CHARS) for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        out.append(f"... and {len(problems) - MAX_PROBLEMS} more problems; fix the ones above first")
    return out


def _num(id: str) -> int:
    return int(id[1:]) if id[1:].isascii() and id[1:].isdigit() else 0


def next_step_number(known: Iterable[str]) -> int:
    """The number a new plan's first step gets: one past the evidence of earlier rounds (1 when none)."""
    return max((_num(k) for k in known), default=0) + 1


def _cycle(plan: Plan) -> list[str]:
    """One cycle of the plan's references, found by a depth-first search (linear), or none.

    Self-references are left to :func:`_reference_problems`. The cycle is named in
    the order results flow (``E1 -> E2 -> E1``: E2 uses E1, E1 uses E2), from its earliest step.
    """
    deps = plan.dependencies()
    state: dict[str, bool] = {}  # True while on the search path, False once finished
    for root in plan.ids:
        if root in state:
            continue
        path, stack = [root], [iter(sorted(deps[root], key=_num))]
        state[root] = True
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = False
                stack.pop()
            elif nxt != path[-1] and state.get(nxt) is True:
                return [_name_cycle(path[path.index(nxt):], plan.ids)]
            elif nxt not in state:
                state[nxt] = True
                path.append(nxt)
                stack.append(iter(sorted(deps[nxt], key=_num)))
    return []


def _name_cycle(uses: list[str], ids: list[str]) -> str:
    cycle = uses[::-1]  # each step uses the next: reversed, each step's result flows to the next
    order = {sid: i for i, sid in reversed(list(enumerate(ids)))}
    first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
    cycle = cycle[first:] + cycle[:first]
    return "steps " + " -> ".join([*cycle, cycle[0]]) + " form a cycle; a step can only use results of steps before it"


def _reference_problems(step: PlanStep, index: int, position: dict[str, int], producers: Mapping[str, str],
                        tools: ToolRegistry) -> list[str]:
    out, seen = [], set()
    for arg, value in step.args.items():
        for ref in dict.fromkeys(find_refs(value)):
            if ref.step not in producers:
                problem = f"step {step.id}: refers to #{ref.step}, which no step defines"
            elif ref.step == step.id:
                problem = f"step {step.id}: refers to its own result #{step.id}; use an earlier step's result"
            elif ref.step in position and position[ref.step] > index:
                problem = (f"step {step.id}: refers to #{ref.step}, a later step; reorder so that "
                           f"{ref.step} comes before {step.id}")
            else:
                why = _path_problem(ref, producers[ref.step], tools)
                problem = why and f"step {step.id}: argument {clip(repr(arg), 40)} uses {clip(str(ref))}{why}"
            if problem and problem not in seen:
                seen.add(problem)
                out.append(problem)
    return out


def _path_problem(ref: Ref, producer: str, tools: ToolRegistry) -> str:
    """Why ``ref``'s field path cannot be read from what the producing tool declares it returns ("" if it can)."""
    shape = shape_problem(ref.path)
    if shape is not None:
        return f": {shape}"
    t = _tool_for(producer, tools) if producer else None
    found = path_problem(t.returns, ref.path) if t is not None and ref.path else None
    if t is None or found is None:
        return ""  # no path, an unknown tool (reported on its step) or earlier evidence of unknown origin
    i, why = found
    return f", but {t.name} returns {why}" if i == 0 else f", but {clip(str(Ref(ref.step, ref.path[:i])))} is {why}"


def _argument_problems(step: PlanStep, t: Tool) -> list[str]:
    fields = t.args_model.model_fields
    out = [f"step {step.id}: {t.name} has no argument {clip(repr(name), 40)}; its arguments are {list(fields)}"
           for name in step.args if name not in fields]
    for name, field in fields.items():
        if name not in step.args:
            if field.is_required():
                out.append(f"step {step.id}: {t.name} needs argument {name!r}")
            continue
        value = step.args[name]
        if whole_ref(value) is not None:
            continue  # checked by _reference_problems
        if any(True for _ in find_refs(value)) and not isinstance(value, str):
            continue  # references nested in lists/dicts are checked once resolved, at run time
        try:
            TypeAdapter(Any if field.annotation is None else field.annotation).validate_python(value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            hint = " (a reference inside text is pasted as text)" if any(True for _ in find_refs(value)) else ""
            out.append(f"step {step.id}: argument {name!r} of {t.name} must be {type_name(field.annotation)}: "
                       f"{clip(msg, 120)} (got {clip(repr(value))}){hint}")
    return out


_REF_SCHEMA = {"type": "string",
               "pattern": rf"^#E[0-9]{{1,9}}(\.-?[A-Za-z0-9_]{{1,{MAX_FIELD_CHARS}}}){{0,{MAX_REF_FIELDS}}}$",
               "description": "the result of an earlier step, or a field of it: #E1, #E2.price"}


def plan_json_schema(tools: ToolRegistry, *, include_llm: bool = True,
                     max_steps: int = MAX_STEPS, max_tokens: int = 1024) -> dict[str, Any]:
    """JSON schema of a plan whose arguments are typed per tool (each argument may also be a reference).

    Free strings get a ``maxLength`` (:data:`MAX_STRING`, at most a quarter of
    ``max_tokens`` characters), arrays and numbers the bounds of
    :func:`~plait.executors._base.bound_schema`, references a bounded path, and
    plans at most ``max_steps`` steps and one per 40 tokens of ``max_tokens``, so
    constrained decoding cannot run away inside a plan: smollm2-135m repeated one
    step until a 320-token limit cut the plan off. Steps carry no id: they are numbered by position (a
    small model cannot then repeat one), and the ``thought`` is optional (a plan
    of calls alone costs fewer tokens).
    """
    max_string = min(MAX_STRING, max(16, max_tokens // 4))
    max_steps = min(max_steps, max(1, max_tokens // 40))
    defs: dict[str, Any] = {"Ref": _REF_SCHEMA}
    variants = []
    for t in [*tools, *([llm_tool] if include_llm else [])]:
        args = bound_schema(_lift_defs(copy.deepcopy(t.args_schema()), t.name, defs), max_string=max_string)
        for name, prop in args.get("properties", {}).items():
            args["properties"][name] = {"anyOf": [prop, {"$ref": "#/$defs/Ref"}]}
        args.pop("title", None)
        variants.append({
            "type": "object",
            "properties": {
                "thought": {"type": "string", "maxLength": max_string},
                "tool": {"const": t.name},
                "args": args,
            },
            "required": ["tool", "args"],
            "additionalProperties": False,
        })
    return {
        "type": "object",
        "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": max_steps,
                                 "items": {"anyOf": variants}}},
        "required": ["steps"],
        "additionalProperties": False,
        "$defs": {name: bound_schema(body, max_string=max_string) for name, body in defs.items()},
    }


def _lift_defs(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move a tool schema's ``$defs`` to the plan schema's root, renaming them per tool."""
    local = schema.pop("$defs", {})
    renamed = {name: f"{prefix}__{name}" for name in local}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/") and ref[8:] in renamed:
                node = {**node, "$ref": "#/$defs/" + renamed[ref[8:]]}
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    for name, body in local.items():
        defs[renamed[name]] = fix(body)
    return fix(schema)
