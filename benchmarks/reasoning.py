"""Hybrid reasoning on reasoning-gym puzzles: the model alone, a self-consistency vote, Formulate, a formalization vote.

Sets: zebra_puzzles, cryptarithm, futoshiki, mini_sudoku, n_queens (reasoning-gym's
own generators, seeds from 100, ``--n`` items each) scored with reasoning-gym's
own scorer. Four arms on one engine, one after the other (each arm's items run
concurrently, so vLLM fills its batch):

* ``alone``: chain of thought, then the final answer extracted under a constraint
  (a regex of the set's answer format, or a choice of the zebra puzzle's names);
* ``vote``: self-consistency, k=5 chains sampled in one ``n=5`` request, each
  extracted as above, majority over the answer strings;
* ``formulate``: plait's ``Formulate`` (k=1): the model writes a CSP, the solver solves it,
  errors are repaired; the solution's answer variables become the answer string;
* ``formal_vote``: ``Formulate(k=4)``, a vote over the solutions of 4 formulations.

The answer mapping (which variables a formulation must declare, how a solution
becomes the scorer's string) is in ``benchmarks/_reasoning_sets.py``. An arm
needing a ``Formulate`` option this install lacks (``k``, ``answer``) is
reported as skipped. Reported per arm: score (0..1, overall and per set),
generated tokens, wall time; the formulation arms also count how their
formulations ended (``formulations``: solved, invalid, unsat, ...).

    python benchmarks/reasoning.py --model qwen2.5-coder-0.5b --n 2 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reasoning_dump import Recorder  # noqa: E402
from _reasoning_sets import ADAPTERS  # noqa: E402

from plait import Formulate, Graph, Message, Request, RunContext, SamplingParams  # noqa: E402

ARMS = ("alone", "vote", "formulate", "formal_vote")
SYSTEM = "You are a careful puzzle solver."
THINK = "\n\nThink step by step, briefly, then state the final answer."
FINAL = "Now write only the final answer, exactly in the format the puzzle asks for."


def load(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` items of each set: ``{"set", "entry", "dataset"}``."""
    import reasoning_gym

    items = []
    for name in ADAPTERS:
        dataset = reasoning_gym.create_dataset(name, size=n, seed=seed)
        items += [{"set": name, "entry": entry, "dataset": dataset} for entry in dataset]
    return items


async def _extract(ctx: RunContext, item: dict, chat: list[Message], thought: str) -> str:
    adapter, entry = ADAPTERS[item["set"]], item["entry"]
    messages = (*chat, Message(role="assistant", content=thought), Message(role="user", content=FINAL))
    params = SamplingParams(max_tokens=320, constraint=adapter.extraction(entry))
    completion = await ctx.generate(Request(prompt=messages, params=params))
    return adapter.finish(entry, completion.text)


def chain_graph(items: list[dict], k: int, cot_tokens: int) -> Graph:
    """``alone`` (k=1, greedy) or ``vote`` (k samples at temperature 0.7, majority of the extracted answers)."""
    g = Graph("alone" if k == 1 else "vote")

    @g.node
    async def answer(index: int, ctx: RunContext) -> str:
        item = items[index]
        chat = [Message(role="system", content=SYSTEM), Message(role="user", content=item["entry"]["question"] + THINK)]
        params = SamplingParams(max_tokens=cot_tokens, n=k, temperature=0.0 if k == 1 else 0.7, seed=index)
        thoughts = await ctx.generate(Request(prompt=tuple(chat), params=params))
        answers: list[str] = [""] * k

        async def one(i: int) -> None:
            answers[i] = await _extract(ctx, item, chat, thoughts.samples[i].text)

        async with anyio.create_task_group() as tg:
            for i in range(len(thoughts.samples)):
                tg.start_soon(one, i)
        return collections.Counter(answers).most_common(1)[0][0]

    return g


def formulate_graph(items: list[dict], k: int, tokens: int, recorder: Recorder | None = None) -> Graph | None:
    """``Formulate`` per item (k formulations voted when k > 1); None when this install's Formulate lacks k/answer."""
    options = inspect.signature(Formulate).parameters
    if k > 1 and "k" not in options:
        return None
    g = Graph("formulate" if k == 1 else "formal_vote")

    @g.node
    async def answer(index: int, ctx: RunContext) -> dict[str, str]:
        item = items[index]
        adapter, entry = ADAPTERS[item["set"]], item["entry"]
        extra: dict[str, Any] = {"k": k} if "k" in options else {}
        if "answer" in options:
            extra["answer"] = adapter.names(entry)
        node = Formulate(sampling=SamplingParams(max_tokens=tokens), engine="auto", **extra)
        formulation = await node.run(f"{entry['question']}\n{adapter.hint(entry)}", ctx)
        found = getattr(formulation, "answer", None) or formulation.solution
        text = adapter.answer(entry, found) if formulation.status == "solved" else None
        if recorder is not None:
            recorder.write({"kind": "item", "arm": g.name, "set": item["set"], "index": index,
                            "wanted": entry["answer"], "found": text, "status": formulation.status,
                            "rounds": [{"sample": r.sample, "round": r.round, "status": r.status,
                                        "finding": r.finding, "tokens": r.completion_tokens} for r in formulation.rounds]})
        return {"answer": text or "", "status": formulation.status if text or formulation.status != "solved"
                else "solved without the answer"}

    return g


async def run_arm(graph: Graph, items: list[dict], backend: Any, concurrency: int) -> dict[str, Any]:
    scores: list[float] = [0.0] * len(items)
    statuses: collections.Counter[str] = collections.Counter()
    tokens = 0
    limit = anyio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal tokens
        async with limit:
            result = await graph.run({"index": i}, backend=backend)
        tokens += result.tokens.completion_tokens
        item = items[i]
        output = result.output if result.status == "ok" else {"answer": "", "status": f"run {result.status}"}
        if isinstance(output, dict):  # a formulation arm: its answer and how the formulation ended
            statuses[output["status"]] += 1
            output = output["answer"]
        answer = output if isinstance(output, str) else ""
        scores[i] = float(item["dataset"].score_answer(answer, item["entry"]))
        print(f"{graph.name} {item['set']} #{i}: score {scores[i]:.2f} answer {answer[:60]!r}", file=sys.stderr,
              flush=True)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i in range(len(items)):
            tg.start_soon(one, i)
    by_set: dict[str, list[float]] = collections.defaultdict(list)
    for item, score in zip(items, scores):
        by_set[item["set"]].append(score)
    figures = {"score": sum(scores) / len(scores), "by_set": {s: sum(v) / len(v) for s, v in by_set.items()},
               "tokens": tokens, "wall_s": time.perf_counter() - started}
    return {**figures, "formulations": dict(statuses)} if statuses else figures


async def measure(backend: Any, items: list[dict], arms: list[str], args: argparse.Namespace,
                  figures: dict[str, Any]) -> None:
    """Run ``arms`` one after the other into ``figures`` (written to ``--json`` after each arm: a run cut short
    by its time limit keeps the arms it finished)."""
    recorder = backend if isinstance(backend, Recorder) else None
    graphs = {"alone": chain_graph(items, 1, args.cot_tokens), "vote": chain_graph(items, 5, args.cot_tokens),
              "formulate": formulate_graph(items, 1, args.formulate_tokens, recorder),
              "formal_vote": formulate_graph(items, args.formal_k, args.formulate_tokens, recorder)}
    async with backend:
        for arm in arms:
            graph = graphs[arm]
            if graph is None:
                figures["skipped"].append(arm)
                continue
            figures["arms"][arm] = await run_arm(graph, items, backend, args.concurrency)
            if args.json:
                with open(args.json, "w", encoding="utf-8") as f:
                    json.dump(figures, f, indent=2)


def print_table(figures: dict[str, Any]) -> None:
    sets = list(ADAPTERS)
    print(f"model {figures['model']}, {figures['n']} items per set, seeds from {figures['seed']}")
    print(f"{'arm':<12} {'score':>6} " + " ".join(f"{s[:11]:>11}" for s in sets) + f" {'tokens':>8} {'wall_s':>8}")
    for arm, r in figures["arms"].items():
        print(f"{arm:<12} {r['score']:>6.2f} " + " ".join(f"{r['by_set'].get(s, 0):>11.2f}" for s in sets)
              + f" {r['tokens']:>8} {r['wall_s']:>8.1f}")
    for arm in figures.get("skipped", []):
        print(f"{arm:<12} skipped: this install's Formulate has no k=/answer= (needs the formalization vote)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="registry name, folder or server URL")
    parser.add_argument("--n", type=int, default=10, help="items per set (default 10)")
    parser.add_argument("--seed", type=int, default=100, help="reasoning-gym seed (>= 100, default 100)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    parser.add_argument("--cot-tokens", type=int, default=1024, help="max tokens of a chain of thought")
    parser.add_argument("--formulate-tokens", type=int, default=2048, help="max tokens of one formulation")
    parser.add_argument("--formal-k", type=int, default=4, help="formulations in the formalization vote")
    parser.add_argument("--concurrency", type=int, default=16, help="items in flight at once")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--dump", metavar="PATH", help="write every formulation request, reply and verdict as "
                                                       "JSON lines (to read what the model wrote)")
    args = parser.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or args.seed < 100 or args.n < 1:
        parser.error(f"--arms takes {', '.join(ARMS)}; --seed must be >= 100; --n >= 1 (got arms {unknown}, "
                     f"seed {args.seed}, n {args.n})")
    from plait.executors import backend_for

    items = load(args.n, args.seed)
    figures: dict[str, Any] = {"model": args.model, "n": args.n, "seed": args.seed, "cot_tokens": args.cot_tokens,
                               "formulate_tokens": args.formulate_tokens, "arms": {}, "skipped": []}
    backend = backend_for(args.model)
    anyio.run(measure, Recorder(backend, args.dump) if args.dump else backend, items, arms, args, figures)
    print_table(figures)


if __name__ == "__main__":
    main()
