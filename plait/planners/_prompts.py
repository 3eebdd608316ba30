"""Prompt text for the planner, the solver and the ReAct agent, kept in one place.

Each builder takes plain values and returns the prompt string, so a user can
swap a template without touching the control flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plait.executors._tools import ToolRegistry
from plait.planners._plan import Plan, as_text
from plait.planners._plan_check import cap_problems, llm_tool, next_step_number
from plait.planners._plan_parse import MAX_PLAN_CHARS

__all__ = ["planner_prompt", "repair_prompt", "solver_prompt", "react_prompt", "render_evidence"]

_JSON_FORMAT = (
    'Answer with JSON only: {"steps": [{"tool": "<tool>", "args": {"<arg>": <value>}}, ...]}. '
    'The steps are E1, E2, ... in order. An argument may be "#E1" (the whole result of step E1) '
    'or "#E1.field" (one field of it).'
)
_TEXT_FORMAT = (
    "Write the plan as lines, each step preceded by its reason:\n"
    "Plan: <why>\n#E1 = <tool>[<input text, or a JSON object of arguments>]\n"
    "Use #E1, #E2 (or #E1.field) inside later inputs to use earlier results."
)


def tool_lines(tools: ToolRegistry, *, include_llm: bool = True) -> str:
    lines = tools.describe()
    if include_llm:
        lines += f"\n- {llm_tool.describe()}"
    return lines


def planner_prompt(task: str, tools: ToolRegistry, *, fmt: str, examples: str = "",
                   evidence: Mapping[str, Any] | None = None, plans: Sequence[Plan] = (),
                   reason: str | None = None) -> str:
    """Ask for the whole plan at once. With ``evidence`` (a replan), show what is already known."""
    parts = [
        "Make a plan to solve the task with the tools below. Each step calls one tool. Steps that do not "
        "need each other's results run in parallel, so only reference a step when you need its result.",
        "Tools:\n" + tool_lines(tools),
        _JSON_FORMAT if fmt == "json" else _TEXT_FORMAT,
    ]
    if examples:
        parts.append("Examples:\n" + examples.strip())
    parts.append(f"Task: {task}")
    if evidence:
        parts.append("Steps already run and their results (reference them, do not repeat them):\n"
                     + render_evidence(plans, evidence))
        parts.append(f"Why a new plan is needed: {reason or 'the evidence was not enough'}")
        parts.append(f"Number new steps from E{next_step_number(evidence)}.")
    parts.append("Plan:" if fmt == "text" else "JSON:")
    return "\n\n".join(parts)


def repair_prompt(previous_prompt: str, raw: str, problems: Sequence[str]) -> str:
    """Re-ask with the validation errors of the last attempt (both capped: the model may have written megabytes)."""
    listed = "\n".join(f"- {p}" for p in cap_problems(problems))
    raw = raw.strip()
    if len(raw) > MAX_PLAN_CHARS:
        raw = raw[:MAX_PLAN_CHARS] + f"\n[... {len(raw) - MAX_PLAN_CHARS} more characters cut]"
    return (f"{previous_prompt}\n{raw}\n\nThat plan cannot run:\n{listed}\n\n"
            "Write the whole corrected plan.\n\n" + previous_prompt.rsplit("\n\n", 1)[-1])


def render_evidence(plans: Sequence[Plan], evidence: Mapping[str, Any]) -> str:
    """``#E1 = tool[args] -> result`` lines for every step that ran."""
    lines = []
    for plan in plans:
        for step in plan.steps:
            if step.id in evidence:
                call = Plan(steps=[step.model_copy(update={"thought": ""})]).to_text()
                lines.append(f"{call} -> {as_text(evidence[step.id])}")
    return "\n".join(lines)


def solver_prompt(task: str, plans: Sequence[Plan], evidence: Mapping[str, Any], *, may_replan: bool) -> str:
    """Write the answer from the task and the evidence (or ask for a new plan)."""
    steps = "\n".join(
        f"{'Plan: ' + s.thought + chr(10) if s.thought else ''}"
        f"{Plan(steps=[s.model_copy(update={'thought': ''})]).to_text()} -> {as_text(evidence[s.id]) if s.id in evidence else 'not run'}"
        for p in plans for s in p.steps
    )
    ask = 'Reply "Answer: <the answer>".'
    if may_replan:
        ask += ' If the evidence is not enough to answer, reply "Replan: <what is missing>" instead.'
    return (f"Solve the task from the evidence gathered by the plan below. Some evidence may be errors.\n\n"
            f"Task: {task}\n\nPlan and evidence:\n{steps}\n\n{ask}\n")


def react_prompt(task: str, tools: ToolRegistry, transcript: str, *, examples: str = "") -> str:
    """One ReAct turn: the tools, the format, the task and everything so far."""
    parts = [
        "Solve the task step by step. At each turn write a Thought, then either an Action calling one tool "
        "and stop (the Observation is given back to you), or the Final Answer.",
        "Tools:\n" + tool_lines(tools, include_llm=False),
        "Format:\nThought: <reasoning>\nAction: <tool>[<input text, or a JSON object of arguments>]\n"
        "Observation: <tool result>\n... (repeat)\nThought: I know the answer.\nFinal Answer: <answer>",
    ]
    if examples:
        parts.append("Examples:\n" + examples.strip())
    parts.append(f"Task: {task}\n{transcript}")
    return "\n\n".join(parts)


