"""Self-consistency fan-out on the in-process engine: one n=k request vs k concurrent vs k sequential.

For each width k (1, 4, 8, 16) the same 8 two-step arithmetic questions are
answered k times each (each sample a short worked solution, as self-consistency
samples reasoning paths, then its answer), three ways: one request with ``n=k`` (the prompt is prefilled once); k
independent requests sent concurrently; k requests one after another. The
questions share a few-shot preamble, so from the second question on the
prompt's prefix should come from vLLM's prefix cache. The cache is emptied
before each arm so every arm starts cold. Figures are medians over
``--repeats`` runs.

    python benchmarks/fanout.py [--model smollm2-135m] [--json out.json] [--repeats 1] [--fixed-length] [--shots 8]

Samples end at their natural stop (a blank line), so an n-request lasts as
long as its longest sample while the sequential arm pays for the mean one.
``--fixed-length`` sets ``min_tokens = max_tokens`` (every sample exactly
``--max-tokens`` long, as vLLM's own throughput benchmark fixes output
lengths), which isolates what batching and the shared prefill save.

Targets (issue 3): width 8 as one n-request costs at most 2x the wall time of
width 1; n-sampling at least 5x faster than sequential at k=8; prefix-cache
hit rate at least 0.85 on the shared-prefix rounds.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections import Counter

import anyio

from plait import Request, SamplingParams
from plait.executors import VLLMBackend

QUESTIONS = [
    "What is 12 + 30 - 5?", "What is 7 * 6 + 3?", "What is 100 - 58 + 9?", "What is 84 - 20 - 7?",
    "What is 9 * 9 - 11?", "What is 15 + 27 + 8?", "What is 6 * 8 - 4?", "What is 50 - 8 + 13?",
]


def _worked(a: int, b: int, c: int) -> str:
    return (f"Question: What is {a} + {b} - {c}?\nReasoning: {a} + {b} = {a + b}. {a + b} - {c} = {a + b - c}.\n"
            f"Answer: {a + b - c}\n\n")


# Self-consistency samples reasoning paths, not bare answers: the few-shot preamble shows a short worked
# solution per question, and each sample writes its own (about 25 tokens) before the answer. Eight shots by
# default, as in the self-consistency paper's chain-of-thought prompts (about 430 tokens).
SHOTS = list(zip(range(11, 31), range(23, 43), range(2, 22)))
ARMS = ("n_sampling", "concurrent", "sequential")


@functools.cache
def preamble(shots: int = 8) -> str:
    if not 1 <= shots <= len(SHOTS):
        raise SystemExit(f"--shots must be within 1..{len(SHOTS)}, got {shots}")
    return "You are a careful calculator. Work the question out, then give the answer.\n\n" + "".join(
        _worked(a, b, c) for a, b, c in SHOTS[:shots])


def prompt(question: str, shots: int = 8) -> str:
    return f"{preamble(shots)}Question: {question}\nAnswer:"


async def one_round(backend: VLLMBackend, question: str, k: int, arm: str, params: SamplingParams,
                    shots: int) -> list:
    """Answer one question k times; returns the completions."""
    if arm == "n_sampling":
        return await backend.generate([Request(prompt=prompt(question, shots),
                                               params=params.model_copy(update={"n": k}))])
    single = Request(prompt=prompt(question, shots), params=params)
    if arm == "concurrent":
        return await backend.generate([single] * k)
    return [c for _ in range(k) for c in await backend.generate([single])]


def _answer(text: str) -> str:
    """The number after the last 'Answer:' (the sample's own final answer), or the whole text."""
    tail = text.rsplit("Answer:", 1)[-1].strip()
    return tail.split()[0] if tail else text.strip()


async def measure(backend: VLLMBackend, k: int, arm: str, params: SamplingParams, shots: int) -> dict:
    await backend.reset_prefix_cache()
    start = time.perf_counter()
    per_round = [await one_round(backend, q, k, arm, params, shots) for q in QUESTIONS]
    wall = time.perf_counter() - start
    generated = sum(c.completion_tokens for rnd in per_round for c in rnd)
    prompt_all = sum(c.prompt_tokens for rnd in per_round for c in rnd)
    cached_all = sum(c.cached_tokens for rnd in per_round for c in rnd)
    prompt_shared = sum(c.prompt_tokens for rnd in per_round[1:] for c in rnd)
    cached_shared = sum(c.cached_tokens for rnd in per_round[1:] for c in rnd)
    votes = [Counter(_answer(s.text) for c in rnd for s in c.samples).most_common(1)[0][0] for rnd in per_round]
    return {
        "wall_s": wall,
        "tok_per_s": generated / wall,
        "cache_hit_rate": cached_all / prompt_all,
        "shared_prefix_hit_rate": cached_shared / prompt_shared if prompt_shared else 0.0,
        "majority_answers": votes,
    }


async def run(model: str, ks: list[int], repeats: int, max_tokens: int, fixed_length: bool = False,
              shots: int = 8) -> dict:
    params = SamplingParams(temperature=0.8, max_tokens=max_tokens, stop=("\n\n", "Question:"),
                            min_tokens=max_tokens if fixed_length else 0)
    results: dict[int, dict[str, dict]] = {}
    async with VLLMBackend(model) as backend:
        await backend.generate([Request(prompt=prompt(QUESTIONS[0], shots), params=params)])  # warm-up
        for k in ks:
            results[k] = {}
            for arm in ARMS:
                runs = [await measure(backend, k, arm, params, shots) for _ in range(repeats)]
                results[k][arm] = {
                    key: statistics.median(r[key] for r in runs)
                    for key in ("wall_s", "tok_per_s", "cache_hit_rate", "shared_prefix_hit_rate")
                } | {"majority_answers": runs[-1]["majority_answers"]}
                wall = results[k][arm]["wall_s"]
                print(f"k={k} {arm}: {wall:.2f} s", file=sys.stderr, flush=True)  # partial figures survive a kill
    return results


def report(results: dict, model: str, fixed_length: bool = False, shots: int = 8) -> dict:
    lengths = "fixed-length samples" if fixed_length else "samples end at their natural stop"
    print(f"fan-out benchmark, model {model}, {len(QUESTIONS)} questions per width (medians), {lengths}, "
          f"{shots}-shot preamble")
    print(f"{'k':>3} {'arm':<11} {'wall s':>8} {'gen tok/s':>10} {'cache hit':>10} {'hit, shared rounds':>19}")
    for k, arms in results.items():
        for arm, r in arms.items():
            print(f"{k:>3} {arm:<11} {r['wall_s']:>8.2f} {r['tok_per_s']:>10.1f} {r['cache_hit_rate']:>10.2f} "
                  f"{r['shared_prefix_hit_rate']:>19.2f}")
    summary = {
        "k": {
            k: {
                "n_sampling_s": arms["n_sampling"]["wall_s"],
                "concurrent_s": arms["concurrent"]["wall_s"],
                "sequential_s": arms["sequential"]["wall_s"],
                "cache_hit_rate": arms["n_sampling"]["cache_hit_rate"],
                "shared_prefix_hit_rate": arms["n_sampling"]["shared_prefix_hit_rate"],
                "arms": arms,
            }
            for k, arms in results.items()
        },
        "model": model,
        "fixed_length": fixed_length,
        "shots": shots,
    }
    if 1 in results and 8 in results:
        n1, n8 = results[1]["n_sampling"]["wall_s"], results[8]["n_sampling"]["wall_s"]
        seq8 = results[8]["sequential"]["wall_s"]
        summary["width8_over_width1_n_sampling"] = n8 / n1
        summary["sequential_over_n_sampling_k8"] = seq8 / n8
        print(f"width 8 / width 1 wall time (n-sampling): {n8 / n1:.2f}x   (target <= 2x)")
        print(f"sequential / n-sampling at k=8: {seq8 / n8:.2f}x   (target >= 5x)")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="registry name or local model folder")
    parser.add_argument("--ks", default="1,4,8,16", help="fan-out widths, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="runs per (k, arm); the median is reported")
    parser.add_argument("--max-tokens", type=int, default=40, help="tokens per sample (a worked answer is ~25)")
    parser.add_argument("--fixed-length", action="store_true",
                        help="every sample exactly --max-tokens long (min_tokens = max_tokens)")
    parser.add_argument("--shots", type=int, default=8, help=f"worked examples in the shared preamble (1..{len(SHOTS)})")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    preamble(args.shots)  # bad --shots fails before the engine starts
    results = anyio.run(run, args.model, ks, args.repeats, args.max_tokens, args.fixed_length, args.shots)
    summary = report(results, args.model, args.fixed_length, args.shots)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)


if __name__ == "__main__":
    main()
