"""Multi-hop tasks of the parallel shape over the countries knowledge base, and a scripted oracle model.

Each task has a gold plan (independent lookups, then a join) and a gold
answer computed straight from the knowledge base. The oracle answers the
planner, the solver and the ReAct prompts deterministically from that plan
and from the evidence it is shown, so every arm does the same work and only
the orchestration differs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plait import Request
from plait.planners._plan import resolve_args

ROOT = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("plan_execute_countries", ROOT / "examples" / "plan_execute_countries.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KB = load_example()
C = KB.COUNTRIES


@dataclasses.dataclass
class Task:
    text: str
    steps: list[dict[str, Any]]
    answer: Callable[[dict[str, Any]], str]  # evidence by id (JSON-decoded) -> answer text
    gold: str
    width: int = 0  # countries the task is about


def _lookups(names: list[str], start: int = 1, ref: str | None = None) -> list[dict[str, Any]]:
    return [{"id": f"E{start + i}", "thought": f"Get the record of {n if ref is None else 'that country'}.",
             "tool": "lookup", "args": {"country": n if ref is None else f"#E{i + 1}.0"}}
            for i, n in enumerate(names)]


def _calc(id_: int, thought: str, expression: str) -> dict[str, Any]:
    return {"id": f"E{id_}", "thought": thought, "tool": "calculator", "args": {"expression": expression}}


def _num(value: float) -> str:
    return f"{value:.0f}"


def combined_population(names: list[str]) -> Task:
    n = len(names)
    expr = " + ".join(f"#E{i + 1}.population" for i in range(n))
    steps = [*_lookups(names), _calc(n + 1, "Add the populations.", expr)]
    gold = _num(sum(C[x.lower()].population for x in names))
    text = f"What is the combined population of {', '.join(names[:-1])} and {names[-1]}?"
    return Task(text, steps, lambda ev: _num(float(ev[f"E{n + 1}"])), gold)


def average_area(names: list[str]) -> Task:
    n = len(names)
    expr = f"({' + '.join(f'#E{i + 1}.area_km2' for i in range(n))}) / {n}"
    steps = [*_lookups(names), _calc(n + 1, "Average the areas.", expr)]
    gold = _num(sum(C[x.lower()].area_km2 for x in names) / n)
    text = f"What is the average area in km2 of {', '.join(names[:-1])} and {names[-1]}?"
    return Task(text, steps, lambda ev: _num(float(ev[f"E{n + 1}"])), gold)


def densest(names: list[str]) -> Task:
    n = len(names)
    steps = [*_lookups(names)] + [
        _calc(n + 1 + i, f"Population density of {names[i]}.", f"#E{i + 1}.population / #E{i + 1}.area_km2")
        for i in range(n)
    ]

    def answer(ev: dict[str, Any]) -> str:
        dens = {ev[f"E{i + 1}"]["name"]: float(ev[f"E{n + 1 + i}"]) for i in range(n)}
        return max(dens, key=dens.get)

    gold = max(names, key=lambda x: C[x.lower()].population / C[x.lower()].area_km2)
    text = f"Which is the most densely populated of {', '.join(names[:-1])} and {names[-1]}?"
    return Task(text, steps, answer, gold)


def population_by_capitals(names: list[str]) -> Task:
    n = len(names)
    capitals = [C[x.lower()].capital for x in names]
    searches = [{"id": f"E{i + 1}", "thought": f"Find the country whose capital is {cap}.", "tool": "search",
                 "args": {"query": cap}} for i, cap in enumerate(capitals)]
    expr = " + ".join(f"#E{n + i + 1}.population" for i in range(n))
    steps = [*searches, *_lookups(names, start=n + 1, ref="search"), _calc(2 * n + 1, "Add the populations.", expr)]
    gold = _num(sum(C[x.lower()].population for x in names))
    text = f"What is the combined population of the countries whose capitals are {', '.join(capitals)}?"
    return Task(text, steps, lambda ev: _num(float(ev[f"E{2 * n + 1}"])), gold)


def most_populous(names: list[str]) -> Task:
    """The issue's own shape: independent lookups, then the solver compares (no tool joins them)."""
    n = len(names)

    def answer(ev: dict[str, Any]) -> str:
        return max((ev[f"E{i + 1}"] for i in range(n)), key=lambda rec: rec["population"])["name"]

    gold = max(names, key=lambda x: C[x.lower()].population)
    text = f"Which has the largest population: {', '.join(names[:-1])} or {names[-1]}?"
    return Task(text, _lookups(names), answer, gold)


# One group of each width from 3 to 8 countries: "several independent lookups". The speed-up of a
# parallel plan grows with the width (LLMCompiler: 1.8x on 2-wide HotpotQA, 3.7x on 8-wide movie
# questions), so the report also breaks the figures down by width.
GROUPS = [
    ["France", "Germany", "Italy"],
    ["Spain", "Portugal", "Netherlands", "Poland"],
    ["Japan", "India", "Indonesia", "China", "Australia"],
    ["Brazil", "Argentina", "Mexico", "Canada", "United States", "Egypt"],
    ["Egypt", "Nigeria", "Kenya", "South Africa", "Sweden", "Norway", "United Kingdom"],
    ["France", "Spain", "Japan", "Brazil", "Nigeria", "Canada", "India", "Sweden"],
]
KINDS = (most_populous, combined_population, average_area, densest, population_by_capitals)


def all_tasks(width: int = 0) -> list[Task]:
    """30 tasks: five kinds over six groups of 3 to 8 countries (or six groups of ``width`` countries each)."""
    groups = GROUPS
    if width:
        names = [c.name for c in C.values()]
        groups = [[names[(g * width + i) % len(names)] for i in range(width)] for g in range(6)]
    return [dataclasses.replace(kind(group), width=len(group)) for group in groups for kind in KINDS]


# -- the scripted oracle model -----------------------------------------------------------------
_EVIDENCE = re.compile(r"^#(E\d+) = \w+\[.*\] -> (.*)$", re.MULTILINE)
_OBSERVATION = re.compile(r"^Observation: (.*)$", re.MULTILINE)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _call_text(tool: str, args: dict[str, Any]) -> str:
    if len(args) == 1 and isinstance(next(iter(args.values())), str):
        return f"{tool}[{next(iter(args.values()))}]"
    return f"{tool}[{json.dumps(args)}]"


class Oracle:
    """Deterministic replies to planner, solver and ReAct prompts for the tasks it knows."""

    def __init__(self, tasks: list[Task], fmt: str = "json"):
        self.tasks = {t.text: t for t in tasks}
        self.fmt = fmt

    def _task(self, prompt: str) -> tuple[Task, str]:
        text, _, rest = prompt.rpartition("Task: ")[2].partition("\n")
        return self.tasks[text], rest

    def __call__(self, request: Request) -> str:
        prompt = request.prompt_text()
        task, rest = self._task(prompt)
        if prompt.startswith("Make a plan"):
            return self._plan(task)
        if prompt.startswith("Solve the task from the evidence"):
            return "Answer: " + task.answer({k: _decode(v) for k, v in _EVIDENCE.findall(rest)})
        return self._react_turn(task, [_decode(o) for o in _OBSERVATION.findall(rest)])

    def _plan(self, task: Task) -> str:
        if self.fmt == "json":  # calls only, numbered by position (LLMCompiler's style; ids and thoughts optional)
            return json.dumps({"steps": [{"tool": s["tool"], "args": s["args"]} for s in task.steps]})
        return "\n".join(f"Plan: {s['thought']}\n#{s['id']} = {_call_text(s['tool'], s['args'])}" for s in task.steps)

    def _react_turn(self, task: Task, observations: list[Any]) -> str:
        evidence = {f"E{i + 1}": o for i, o in enumerate(observations)}
        if len(observations) < len(task.steps):
            step = task.steps[len(observations)]
            args = resolve_args(step["args"], evidence)
            return f"Thought: {step['thought']}\nAction: {_call_text(step['tool'], args)}\n"
        return f"Thought: I know the answer.\nFinal Answer: {task.answer(evidence)}\n"


REWOO_EXAMPLE_JSON = """Task: What is the combined area of Norway and Sweden?
JSON: {"steps": [{"tool": "lookup", "args": {"country": "Norway"}}, {"tool": "lookup", "args": {"country": "Sweden"}}, \
{"tool": "calculator", "args": {"expression": "#E1.area_km2 + #E2.area_km2"}}]}"""

REWOO_EXAMPLE_TEXT = """Task: What is the combined area of Norway and Sweden?
Plan: Get Norway's record.
#E1 = lookup[Norway]
Plan: Get Sweden's record.
#E2 = lookup[Sweden]
Plan: Add the areas.
#E3 = calculator[#E1.area_km2 + #E2.area_km2]"""

REACT_EXAMPLE = """Task: What is the combined area of Norway and Sweden?
Thought: Get Norway's record.
Action: lookup[Norway]
Observation: {"name":"Norway","capital":"Oslo","population":5500000,"area_km2":385207,"continent":"Europe","currency":"krone"}
Thought: Get Sweden's record.
Action: lookup[Sweden]
Observation: {"name":"Sweden","capital":"Stockholm","population":10500000,"area_km2":450295,"continent":"Europe","currency":"krona"}
Thought: Add the areas.
Action: calculator[385207 + 450295]
Observation: 835502.0
Thought: I know the answer.
Final Answer: 835502"""
