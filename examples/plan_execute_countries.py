"""Plan-then-execute over a small local knowledge base of countries.

Three tools over ``examples/data/countries.json``: ``search`` (names of the
countries matching a text), ``lookup`` (one country's record, a typed model
whose fields later steps reference as ``#E3.population``) and ``calculator``
(safe arithmetic). The planner writes the whole plan in one model call, the
independent lookups run in parallel, and one solver call writes the answer.

Run it without a model (canned planner and solver replies from
:func:`make_backend`)::

    plait run examples/plan_execute_countries.py:graph \
        --input '{"task": "Which is more densely populated: the country whose capital is Canberra or the one whose capital is Ottawa?"}'

or from Python: ``await graph.run({"task": ...}, backend=make_backend())``.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from pathlib import Path

from pydantic import BaseModel

from plait import Request, ScriptedBackend, tool
from plait.planners import plan_and_execute_graph

DATA = Path(__file__).parent / "data" / "countries.json"


class Country(BaseModel):
    name: str
    capital: str
    population: int
    area_km2: int
    continent: str
    currency: str


def load_countries(path: Path = DATA) -> dict[str, Country]:
    rows = json.loads(path.read_text())["countries"]
    return {row["name"].lower(): Country(**row) for row in rows}


COUNTRIES = load_countries()


@tool(cache=True)
def search(query: str) -> list[str]:
    """Names of the countries whose name, capital, continent or currency matches the query text."""
    words = {w for w in re.findall(r"[a-z]+", query.lower()) if len(w) > 2}
    hits = [c.name for c in COUNTRIES.values()
            if words & set(re.findall(r"[a-z]+", f"{c.name} {c.capital} {c.continent} {c.currency}".lower()))]
    return hits


@tool(cache=True)
def lookup(country: str) -> Country:
    """The record of one country: name, capital, population, area_km2, continent, currency."""
    found = COUNTRIES.get(country.strip().lower())
    if found is None:
        raise KeyError(f"no country named {country!r}; use search to find the exact name")
    return found


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


@tool
def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression of numbers with + - * / ** and parentheses."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"unsupported expression part: {ast.dump(node)[:60]}")

    return round(float(ev(ast.parse(expression, mode="eval").body)), 6)


TOOLS = [search, lookup, calculator]
graph = plan_and_execute_graph(TOOLS, name="countries")

# -- canned model replies, so the example runs without a model ---------------------------------
DEMO_TASK = ("Which is more densely populated: the country whose capital is Canberra "
             "or the one whose capital is Ottawa?")
DEMO_PLAN = {"steps": [  # steps E1..E6 by position; a thought is optional
    {"thought": "Find the country whose capital is Canberra.", "tool": "search", "args": {"query": "Canberra"}},
    {"thought": "Find the country whose capital is Ottawa.", "tool": "search", "args": {"query": "Ottawa"}},
    {"tool": "lookup", "args": {"country": "#E1.0"}},
    {"tool": "lookup", "args": {"country": "#E2.0"}},
    {"thought": "Density of the first.", "tool": "calculator", "args": {"expression": "#E3.population / #E3.area_km2"}},
    {"thought": "Density of the second.", "tool": "calculator", "args": {"expression": "#E4.population / #E4.area_km2"}},
]}
_EVIDENCE = re.compile(r"^#(E\d+) = \w+\[.*\] -> (.*)$", re.MULTILINE)


def _scripted_reply(request: Request) -> str:
    prompt = request.prompt_text()
    if prompt.startswith("Make a plan"):
        if "Canberra" in prompt and "Ottawa" in prompt:
            return json.dumps(DEMO_PLAN)
        task = prompt.rsplit("Task: ", 1)[-1].split("\n", 1)[0]
        return json.dumps({"steps": [{"tool": "search", "args": {"query": task}}]})
    evidence = dict(_EVIDENCE.findall(prompt))
    if {"E3", "E4", "E5", "E6"} <= evidence.keys():
        first, second = (json.loads(evidence[k])["name"] for k in ("E3", "E4"))
        denser = first if float(evidence["E5"]) > float(evidence["E6"]) else second
        return (f"Answer: {denser} ({float(evidence['E5']):.2f} vs {float(evidence['E6']):.2f} "
                f"people per km2 for {first} and {second})")
    return f"Answer: {evidence.get('E1', 'unknown')}"


def make_backend() -> ScriptedBackend:
    """A scripted stand-in for the model: the canned plan for the demo task, a search plan otherwise."""
    return ScriptedBackend(_scripted_reply)


async def main() -> None:
    result = await graph.run({"task": DEMO_TASK}, backend=make_backend())
    print(result.output.answer)
    print(result.summary())


if __name__ == "__main__":
    import anyio

    anyio.run(main)
