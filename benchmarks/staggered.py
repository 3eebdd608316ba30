"""Staggered votes on the in-process engine: does the prefix cache still serve a vote spread over prompt variants?

Each question comes with its own document (a seeded price list of ``--items``
lines, several hundred tokens) and asks for the total of two items. Three arms
answer every question with k samples:

* ``identical``: ``FanOut(k)``, one ``n=k`` request (one prefill);
* ``staggered``: ``FanOut(k, variants=3 hints)``: one ``n``-request per hint,
  the hint after the document and question, so the three prompts share them as
  a prefix (what ``FanOut`` requires);
* ``variant_first``: the same three prompts with the hint *before* the
  document (built by hand: ``FanOut`` refuses this layout), so nothing but the
  instructions is shared.

Reported per arm: prompt tokens, those served from vLLM's prefix cache (the
cache is emptied before each arm) and those prefilled (the rest), wall time, accuracy of the majority answer,
and distinct answers per question (what staggering is for). Questions are sent
``--concurrency`` at a time so the engine fills its batch.

vLLM serves an ``n``-request as n child requests that hit one another's
cached prefix, and reports those hits as cached tokens: with k > 3 every arm
shows a high hit rate, and wall time is the figure that tells the layouts
apart. With ``--k 3`` (one sample per hint, ``n=1`` requests) the staggered
arm's cached tokens are the hits across variants alone.

    flock /tmp/vllm.lock timeout 900 python benchmarks/staggered.py --model qwen2.5-coder-0.5b --n 8 --json out.json
    python benchmarks/staggered.py --simulate   # the mechanics, on a scripted stand-in
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from typing import Any

import anyio

from plait import Graph, NodeFailedError, Request, SamplingParams, ScriptedBackend, TokenUsage
from plait.planners import ChainStep, FanOut, NumberParser

INSTRUCTIONS = "Read the price list, then answer the question with just the number, nothing else.\n\n"
ARMS = ("identical", "staggered", "variant_first")
HINTS = ["Find both prices first, then add them.", "Add as you go, line by line.",
         "Write the two prices on one line, then their sum."]


def problem(index: int, items: int, seed: int) -> tuple[str, str, int]:
    """A question's document, its question and the answer."""
    rng = random.Random(seed * 1000 + index)
    prices = {f"item {i:03d}": rng.randint(10, 99) for i in rng.sample(range(1000), items)}
    a, b = rng.sample(sorted(prices), 2)
    document = "".join(f"{name} costs {price} dollars.\n" for name, price in prices.items())
    return document, f"What do {a} and {b} cost together?", prices[a] + prices[b]


def template(arm: str) -> str:
    """The prompt of an arm: no hint, the hint after the question (shared prefix), or the hint first."""
    if arm == "variant_first":
        return INSTRUCTIONS + "Hint: {variant}\n\n{document}\nQuestion: {question}\nAnswer (one number):"
    hint = "Hint: {variant}\n" if arm == "staggered" else ""
    return INSTRUCTIONS + "{document}\nQuestion: {question}\n" + hint + "Answer (one number):"


async def run_arm(arm: str, backend: Any, problems: list, k: int, params: SamplingParams,
                  concurrency: int) -> dict[str, Any]:
    graph = Graph(arm)
    if arm != "variant_first":  # FanOut refuses that layout: its requests are built by hand below
        step = ChainStep(template(arm), NumberParser(int, constrain=False), name="solve", sampling=params)
        graph.add(FanOut(step, k=k, variants=HINTS if arm == "staggered" else None, keep_truncated=True,
                         name="vote"))
    stats: Counter = Counter()
    limiter = anyio.Semaphore(concurrency)

    async def one(document: str, question: str, answer: int) -> None:
        async with limiter:
            if arm == "variant_first":
                shares = [k // 3 + (1 if v < k % 3 else 0) for v in range(3)]
                requests = [Request(prompt=template(arm).format(variant=h, document=document, question=question),
                                    params=params.model_copy(update={"n": n})) for h, n in zip(HINTS, shares) if n]
                completions = await backend.generate(requests)
                answers = [_number(s.text) for c in completions for s in c.samples]
                prompt = sum(c.prompt_tokens for c in completions)
                cached = sum(c.cached_tokens for c in completions)
            else:
                try:
                    result = await graph.run({"document": document, "question": question}, backend=backend)
                    answers, usage = [c.value for c in result.output.candidates], result.tokens
                except NodeFailedError as error:  # no sample gave a number: a wrong answer, its tokens still count
                    answers, usage = [], error.partial.tokens if error.partial else TokenUsage()
                prompt, cached = usage.prompt_tokens, usage.cached_tokens
            votes = Counter(a for a in answers if a is not None)
            winner = votes.most_common(1)[0][0] if votes else None
            stats.update(prompt=prompt, cached=cached, correct=int(winner == answer), distinct=len(votes),
                         questions=1)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for document, question, answer in problems:
            tg.start_soon(one, document, question, answer)
    n = stats["questions"]
    return {"questions": n, "prompt_tokens": stats["prompt"], "cached_tokens": stats["cached"],
            "prefilled_tokens": stats["prompt"] - stats["cached"],
            "cache_hit_rate": round(stats["cached"] / stats["prompt"], 3) if stats["prompt"] else 0.0,
            "wall_s": round(time.perf_counter() - start, 2), "accuracy": round(stats["correct"] / n, 3),
            "distinct_answers": round(stats["distinct"] / n, 2)}


def _number(text: str) -> int | None:
    try:
        return NumberParser(int, constrain=False).parse(text)
    except Exception:
        return None


def simulated(problems: list) -> ScriptedBackend:
    answers = {q: a for _, q, a in problems}

    def reply(request: Request) -> str:
        text = request.prompt_text()
        question = next(q for q in answers if q in text)
        return f"so {answers[question] + (1 if 'line by line' in text else 0)}"

    return ScriptedBackend(reply)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    problems = [problem(i, args.items, args.seed) for i in range(args.n)]
    params = SamplingParams(temperature=0.7, max_tokens=args.max_tokens, seed=args.seed)
    results: dict[str, Any] = {}
    if args.simulate:
        for arm in ARMS:  # a fresh stand-in per arm: its simulated prefix cache starts cold
            results[arm] = await run_arm(arm, simulated(problems), problems, args.k, params, args.concurrency)
    else:
        from plait.executors import VLLMBackend
        async with VLLMBackend(args.model) as backend:
            for arm in ARMS:
                await backend.reset_prefix_cache()
                results[arm] = await run_arm(arm, backend, problems, args.k, params, args.concurrency)
                print(f"{arm}: {results[arm]}", file=sys.stderr, flush=True)  # partial figures survive a kill
    return {"model": "simulated" if args.simulate else args.model, "n": args.n, "k": args.k, "items": args.items,
            "arms": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--simulate", action="store_true", help="a scripted stand-in instead of vLLM")
    parser.add_argument("--n", type=int, default=24, help="questions")
    parser.add_argument("--k", type=int, default=6, help="samples per question")
    parser.add_argument("--items", type=int, default=40, help="lines in each question's price list")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4, help="questions in flight")
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    out = anyio.run(main_async, args)
    print(f"{'arm':<14} {'prompt tok':>10} {'cached':>8} {'prefilled':>9} {'hit':>6} {'wall s':>7} {'acc':>6} "
          f"{'distinct':>9}")
    for arm, r in out["arms"].items():
        print(f"{arm:<14} {r['prompt_tokens']:>10} {r['cached_tokens']:>8} {r['prefilled_tokens']:>9} "
              f"{r['cache_hit_rate']:>6.2f} "
              f"{r['wall_s']:>7.2f} {r['accuracy']:>6.2f} {r['distinct_answers']:>9.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
