"""The ``--model`` arm of benchmarks/csp.py: natural-language seating puzzles with known answers.

Puzzles are generated from a seeded random seating: clues true of it are added
until plait's solver finds exactly one solution, so each puzzle has a unique,
known answer; clues the answer does not need are then dropped. Two arms on
the same model: the model alone (chain of thought, then a JSON answer) and the
model + solver (``Formulate`` with repair). An answer counts when every
person's seat matches.
"""

from __future__ import annotations

import json
import random
import re
import sys
from typing import Any

import anyio

from plait import CSP, Formulate, Graph, Request, RunContext, SamplingParams, solve
from plait.solvers import FEW_SHOT, FewShot  # the library examples, plus one of this task

NAMES = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana"]


def _clue(rng: random.Random, seat: dict[str, int], n: int) -> tuple[str, str]:
    """One random clue true of ``seat``: (English, constraint in the safe language)."""
    a, b = rng.sample(sorted(seat), 2)
    kind = rng.choice(["at", "not_at", "left_of", "before", "next", "not_next", "end"])
    if kind == "at":
        return f"{a} sits in seat {seat[a]}.", f"{a} == {seat[a]}"
    if kind == "not_at":
        k = rng.choice([s for s in range(1, n + 1) if s != seat[a]])
        return f"{a} does not sit in seat {k}.", f"{a} != {k}"
    if kind == "left_of" and seat[a] + 1 == seat[b]:
        return f"{a} sits directly left of {b}.", f"{a} + 1 == {b}"
    if kind in ("before", "left_of"):
        first, second = (a, b) if seat[a] < seat[b] else (b, a)
        return f"{first} sits somewhere left of {second}.", f"{first} < {second}"
    if kind == "next" and abs(seat[a] - seat[b]) == 1:
        return f"{a} and {b} sit next to each other.", f"abs({a} - {b}) == 1"
    if kind in ("next", "not_next") and abs(seat[a] - seat[b]) != 1:
        return f"{a} and {b} do not sit next to each other.", f"abs({a} - {b}) != 1"
    if seat[a] in (1, n):
        return f"{a} sits at one of the two ends.", f"{a} == 1 or {a} == {n}"
    return f"{a} does not sit at either end.", f"{a} != 1 and {a} != {n}"


def make_puzzle(seed: int, n: int = 4) -> dict[str, Any]:
    """A seating puzzle with a unique answer: ``{"text", "answer", "csp"}``."""
    rng = random.Random(seed)
    people = rng.sample(NAMES, n)
    seat = dict(zip(people, rng.sample(range(1, n + 1), n)))
    texts: list[str] = []
    rules: list[str] = []
    base = {"variables": [{"name": p, "domain": {"min": 1, "max": n}} for p in people],
            "constraints": [{"kind": "all_different", "variables": people}]}
    while True:
        text, rule = _clue(rng, seat, n)
        if rule in rules:
            continue
        texts.append(text)
        rules.append(rule)
        if _unique(base, rules):
            break
    for i in reversed(range(len(rules))):  # drop clues the answer does not need: minimal, harder puzzles
        if _unique(base, rules[:i] + rules[i + 1:]):
            del rules[i], texts[i]
    model = {**base, "constraints": base["constraints"] + rules}
    intro = (f"{', '.join(people[:-1])} and {people[-1]} sit in a row of {n} seats numbered 1 to {n} from left "
             "to right, one person per seat.")
    return {"text": f"{intro} {' '.join(texts)} Who sits in which seat?", "answer": seat,
            "csp": CSP.model_validate(model), "model": model, "clues": list(zip(texts, rules))}


def worked_example() -> dict[str, Any]:
    """The one worked puzzle both arms see (Logic-LM style task examples): a seed outside the test range
    whose clues use the most kinds, with its CSP and a short worked answer."""
    def kinds(p: dict[str, Any]) -> int:
        return len({re.sub(r"[A-Z][a-z]+|\d", "_", rule) for _, rule in p["clues"]})

    puzzle = max((make_puzzle(seed) for seed in range(10_000, 10_040)), key=lambda p: (kinds(p)))
    steps = "\n".join(f"- {text} So {rule}." for text, rule in puzzle["clues"])
    answer = json.dumps(dict(sorted(puzzle["answer"].items(), key=lambda kv: kv[1])))
    worked = (f"Each clue as a condition on seat numbers:\n{steps}\nEvery person has a different seat from 1 to "
              f"{len(puzzle['answer'])}. The only seating that meets every condition:\n{answer}")
    return {**puzzle, "worked": worked}


def _unique(base: dict, rules: list[str]) -> bool:
    csp = CSP.model_validate({**base, "constraints": base["constraints"] + rules})
    return solve(csp, mode="all", max_solutions=2).count == 1


INSTRUCTION = ("Think step by step. Then, on the last line, give the answer as a JSON object mapping each person "
               "to their seat number.")


async def _model_alone(puzzle: dict, ctx: RunContext) -> dict[str, int] | None:
    example = worked_example()
    prompt = (f"{example['text']}\n{INSTRUCTION}\n{example['worked']}\n\n"
              f"{puzzle['text']}\n{INSTRUCTION}\n")
    completion = await ctx.generate(Request(prompt=prompt, params=SamplingParams(max_tokens=768)))
    found = re.findall(r"\{[^{}]*\}", completion.text)
    try:
        return {k: int(v) for k, v in json.loads(found[-1]).items()} if found else None
    except (ValueError, TypeError, AttributeError):
        return None


async def accuracy(backend: Any, count: int = 20, concurrency: int = 8) -> dict[str, Any]:
    """Both arms over ``count`` puzzles; per-arm accuracy and per-puzzle outcomes.

    Up to ``concurrency`` puzzles run at once so the engine batches their requests.
    """
    puzzles = [make_puzzle(seed) for seed in range(count)]
    alone = Graph("model_alone")
    alone.add(_model_alone, name="answer")
    solver = Graph("model_plus_solver")
    example = worked_example()
    examples = [*FEW_SHOT, FewShot(problem=example["text"], model=example["model"])]
    solver.add(Formulate(max_rounds=3, expect_unique=True, examples=examples))
    rows: list[dict[str, Any]] = [{} for _ in puzzles]
    limit = anyio.Semaphore(concurrency)

    async def one(i: int, p: dict[str, Any]) -> None:
        async with limit:
            a = (await alone.run({"puzzle": p}, backend=backend)).output
            f = (await solver.run({"problem": p["text"]}, backend=backend)).output
        b = {k: f.solution[k] for k in p["answer"]} if f.solution and set(p["answer"]) <= set(f.solution) else None
        rows[i] = {"alone_ok": a == p["answer"], "solver_ok": f.status == "solved" and b == p["answer"],
                   "solver_rounds": len(f.rounds), "solver_status": f.status}
        print(f"puzzle {i}: alone {'ok' if rows[i]['alone_ok'] else 'wrong'}, solver {f.status} in {len(f.rounds)} "
              f"round(s), {'ok' if rows[i]['solver_ok'] else 'wrong'}", file=sys.stderr, flush=True)

    async with anyio.create_task_group() as tg:
        for i, p in enumerate(puzzles):
            tg.start_soon(one, i, p)
    return {"puzzles": count, "model_alone": sum(r["alone_ok"] for r in rows) / count,
            "model_plus_solver": sum(r["solver_ok"] for r in rows) / count, "rows": rows}
