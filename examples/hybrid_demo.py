"""The hybrid demo (`make demo`): one logic puzzle asked plainly and through plait's model + solver path.

* model alone: the model thinks step by step, then writes its final answer under a
  regex constraint (``Ada=N, Ben=N, ...``);
* plait hybrid: ``Formulate`` has the model write the puzzle as a CSP (one worked
  example of the same kind shown, the four people required as answer variables),
  the solver solves it, errors go back to the model for repair; the answer is the
  checked solution.

A side-by-side table follows: answer, correct, generated tokens, seconds. Without
``--model`` a scripted stand-in model answers (the test suite runs it that way);
with ``--model`` the puzzle goes to a real one, and vLLM's own logging (on stdout
and stderr) goes to ``--log`` instead of the terminal:

    python examples/hybrid_demo.py --model qwen2.5-coder-0.5b
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio

from plait import Formulate, Graph, Message, Request, RunContext, SamplingParams, ScriptedBackend
from plait.executors import Regex
from plait.solvers import FEW_SHOT, FewShot

PEOPLE = ["Ada", "Ben", "Cleo", "Dan"]
PUZZLE = ("Ada, Ben, Cleo and Dan sit in a row of 4 seats numbered 1 to 4 from left to right, one person per seat. "
          "Cleo sits directly left of Ada. Ben does not sit at either end. Dan sits somewhere left of Ben. "
          "Who sits in which seat?")
ANSWER = {"Dan": 1, "Ben": 2, "Cleo": 3, "Ada": 4}
EXAMPLE = FewShot(
    problem="Eve, Finn and Gus sit in a row of 3 seats numbered 1 to 3 from left to right, one person per seat. "
            "Gus sits in seat 1. Eve does not sit in seat 2. Who sits in which seat?",
    model={"variables": [{"name": n, "domain": {"min": 1, "max": 3}} for n in ("Eve", "Finn", "Gus")],
           "constraints": [{"kind": "all_different", "variables": ["Eve", "Finn", "Gus"]}, "Gus == 1", "Eve != 2"]})

plain = Graph("model_alone", description="chain of thought, then a constrained final answer")
hybrid = Graph("plait_hybrid", description="the model formulates a CSP, the solver answers")
graph = hybrid  # what `plait run examples/hybrid_demo.py` runs


@plain.node
async def think_then_answer(puzzle: str, ctx: RunContext) -> dict[str, int]:
    chat = (Message(role="user", content=f"{puzzle}\nThink step by step, then give the answer."),)
    thought = await ctx.generate(Request(prompt=chat, params=SamplingParams(max_tokens=512)))
    final = (*chat, Message(role="assistant", content=thought.text),
             Message(role="user", content="Write only the final answer."))
    pattern = ", ".join(f"{p}=[1-4]" for p in PEOPLE)
    answer = await ctx.generate(Request(prompt=final, params=SamplingParams(max_tokens=32,
                                                                           constraint=Regex(pattern=pattern))))
    return {name: int(seat) for name, seat in re.findall(r"(\w+)=(\d)", answer.text)}


formulate = hybrid.add(Formulate(examples=[*FEW_SHOT, EXAMPLE], answer=PEOPLE,
                                 sampling=SamplingParams(max_tokens=1024)))


@hybrid.node
def answer(formulate: Any) -> dict[str, Any]:
    """The answer, or how the formulation ended (shown under the table)."""
    if formulate.status == "solved" and formulate.answer:
        return dict(formulate.answer)
    finding = formulate.feedback[-1] if formulate.feedback else "no formulation"
    return {"unsolved": f"{formulate.status} after {len(formulate.rounds)} round(s): {finding}"}


hybrid.edge(formulate, answer)

_THOUGHT = "Cleo is left of Ada, so Cleo=1 and Ada=2. Ben is not at an end, so Ben=3, and Dan=4."
_CSP = """Ada Ben Cleo Dan in 1..4
alldifferent(Ada,Ben,Cleo,Dan)
Cleo+1 == Ada
Ben != 1 and Ben != 4
Dan < Ben"""


def make_backend() -> ScriptedBackend:
    """A stand-in model: a plausible but wrong chain of thought; a correct formulation."""
    def reply(request: Request) -> str:
        constraint = request.params.constraint
        if constraint is None:
            return _THOUGHT
        if isinstance(constraint, Regex):
            return "Ada=2, Ben=3, Cleo=1, Dan=4"
        return _CSP

    return ScriptedBackend(reply)


async def compare(backend: Any) -> list[dict[str, Any]]:
    """Both arms, one after the other on the same backend: answer, correct, tokens, seconds."""
    rows = []
    async with backend:
        for label, graph in (("model alone (CoT)", plain), ("plait hybrid (CSP)", hybrid)):
            started = time.perf_counter()
            result = await graph.run({"puzzle": PUZZLE} if graph is plain else {"problem": PUZZLE}, backend=backend)
            got = dict(result.output) if result.status == "ok" else {"unsolved": f"run {result.status}"}
            why = got.pop("unsolved", None)
            rows.append({"arm": label, "answer": " ".join(f"{p}={got[p]}" for p in sorted(got, key=got.get)) or "-",
                         "why": why,
                         "correct": got == ANSWER, "tokens": result.tokens.completion_tokens,
                         "seconds": time.perf_counter() - started})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [PUZZLE, f"expected: {' '.join(f'{p}={s}' for p, s in ANSWER.items())}", "",
             f"{'':<20} {'answer':<28} {'correct':<8} {'tokens':>7} {'seconds':>8}"]
    for r in rows:
        lines.append(f"{r['arm']:<20} {r['answer']:<28} {'yes' if r['correct'] else 'no':<8} {r['tokens']:>7} "
                     f"{r['seconds']:>8.1f}")
    lines += [f"{r['arm']}: {' '.join(r['why'].split())[:300]}" for r in rows if r["why"]]
    return "\n".join(lines)


@contextlib.contextmanager
def engine_output_to(path: str) -> Iterator[None]:
    """Send this process's (and the engine process's) stdout and stderr to ``path``: vLLM logs to both."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model name or server URL (default: a scripted stand-in)")
    parser.add_argument("--log", default="demo-vllm.log", help="where vLLM's logging goes (with --model)")
    args = parser.parse_args()
    if args.model is None:
        print(table(anyio.run(compare, make_backend())))
        return
    from plait.executors import backend_for

    print(f"asking {args.model} (vLLM's log: {args.log}) ...", flush=True)
    try:
        with engine_output_to(args.log):
            rows = anyio.run(compare, backend_for(args.model))
    except Exception as exc:
        sys.exit(f"demo failed: {type(exc).__name__}: {exc} (vLLM's log: {args.log})")
    print(table(rows))


if __name__ == "__main__":
    main()
