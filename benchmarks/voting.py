"""Width vs depth: single greedy chain vs majority vote k=8 vs early-stop vote k=8 on word problems.

Questions come from the seeded generator in ``benchmarks/word_problems.py``
(two- and three-step integer problems with known answers). Each arm is a
plait graph: ``single`` is one greedy ChainStep; ``vote8`` a FanOut of 8
samples (one n=8 request) with a majority vote; ``early8`` the same FanOut
with ``EarlyStop`` (waves of ``--wave``, stop when the leader cannot be
overtaken, the tie rule included; looser rules that can change the winner:
``--margin M``, stop once the leader is M votes ahead of every other answer;
``--failure-margin F``, once failed samples outnumber the leader's votes by F;
``--confidence C``, once the leader holds C of the votes). The exact rule is the
default: with qwen2.5-coder-0.5b every looser rule that saved 30% of the tokens
cost 3 to 6 points of accuracy on held-out questions (margin 2 + failure margin 3,
picked on seed 0's replay: 38.8% fewer tokens, -6 points on seed 2, n=100).
How much early stopping saves depends on how often the model agrees with
itself: on qwen2.5-coder-1.5b (seed 3, n=40) the exact rule alone gave 45.1%
fewer tokens than vote8 at the same accuracy (0.975; single 0.725), while
qwen2.5-coder-0.5b's scattered, often truncated samples leave it about 15%.
Reported: accuracy and
generated (completion) tokens per arm. Both votes use one sampling seed, so
sample i of a question is the same draw in either arm (common random
numbers): early8 sees the first samples vote8 sees, and the two differ only
by where the stopping rule cut. With only the exact rule
early8 matches vote8's answers wherever the engine draws the same sample for the
same seed. vote8's samples are kept in the JSON
(``details.arms.vote8.votes``) to evaluate other stopping rules offline.

    python benchmarks/voting.py [--model qwen2.5-coder-0.5b] [--n 40] [--seed 0] [--json out.json]
    python benchmarks/voting.py --model qwen2.5-coder-1.5b --seed 3    # plait models pull qwen2.5-coder-1.5b
    python benchmarks/voting.py --simulate    # a seeded stand-in model, no vLLM needed

``--simulate`` checks the mechanics only: its "model" answers each question
correctly with a per-question probability, else one of three distractors;
its greedy chain is one fixed draw from that distribution per question.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from word_problems import Problem, generate  # noqa: E402

from plait import FunctionBackend, Graph, Request, SamplingParams
from plait.executors import Sample  # noqa: E402
from plait.planners import Candidate, ChainStep, EarlyStop, FanOut, Majority, NumberParser, VoteResult  # noqa: E402

SYSTEM = "Solve the math word problem. Reason briefly step by step, then end with 'The answer is N.'"


def solver(max_tokens: int) -> ChainStep:
    return ChainStep([("system", SYSTEM), ("user", "{question}")], NumberParser(int, constrain=False),
                     sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens), max_reasks=0, name="solve")


def arms(args: argparse.Namespace) -> dict[str, Graph]:
    # One seed for both votes: sample i of a question is drawn with seed + i in either arm (common random
    # numbers), so early8 sees the first samples vote8 sees and the two differ only by the stopping rule.
    sampling = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.sample_seed)
    single = Graph("single")
    single.add(solver(args.max_tokens))
    vote8 = Graph("vote8")
    vote8.add(FanOut(solver(args.max_tokens), k=8, aggregate=Majority(), sampling=sampling, name="vote"))
    early8 = Graph("early8")
    early8.add(FanOut(solver(args.max_tokens), k=8, sampling=sampling, name="vote",
                      aggregate=EarlyStop(wave=args.wave, confidence=args.confidence, margin=args.margin or None,
                                          failure_margin=args.failure_margin or None,
                                          min_samples=args.min_samples)))
    every = {"single": single, "vote8": vote8, "early8": early8}
    chosen = args.arms.split(",")
    unknown = sorted(set(chosen) - set(every))
    if unknown:
        sys.exit(f"--arms: unknown arm(s) {unknown}; choose from {sorted(every)}")
    return {name: every[name] for name in chosen}


async def run_arm(graph: Graph, problems: list[Problem], backend: Any, concurrency: int) -> dict[str, Any]:
    correct, tokens, failures, samples = 0, 0, 0, 0
    errors: list[str] = []
    votes: dict[int, list] = {}  # question index -> [answer or None, generated tokens] per sample
    limiter = anyio.CapacityLimiter(concurrency)
    t0 = time.perf_counter()

    async def one(index: int, problem: Problem) -> None:
        nonlocal correct, tokens, failures, samples
        async with limiter:
            try:
                result = await graph.run({"question": problem.question}, backend=backend)
            except Exception as exc:  # unparsable single answer or a vote with no usable sample: wrong
                failures += 1
                if len(errors) < 3:
                    errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                partial = getattr(exc, "partial", None)
                tokens += partial.tokens.completion_tokens if partial is not None else 0
                return
        answer = result.output.winner if isinstance(result.output, VoteResult) else result.output
        if isinstance(result.output, VoteResult):
            votes[index] = [[c.value if c.ok else None, c.completion_tokens] for c in result.output.candidates]
        samples += result.output.samples if isinstance(result.output, VoteResult) else 1
        correct += answer == problem.answer
        tokens += result.tokens.completion_tokens

    async with anyio.create_task_group() as tg:
        for index, problem in enumerate(problems):
            tg.start_soon(one, index, problem)
    return {"accuracy": correct / len(problems), "tokens": tokens, "failed_runs": failures, "samples": samples,
            "seconds": round(time.perf_counter() - t0, 1), "first_errors": errors,
            "votes": [votes.get(i) for i in range(len(problems))] if votes else None}


def simulated_backend(problems: list[Problem], seed: int) -> FunctionBackend:
    """A stand-in model: per question, P(correct) in [0.35, 0.95]; wrong answers cluster on 3 distractors."""
    r = random.Random(seed)
    table = {}
    for p in problems:
        wrong = [p.answer + d for d in r.sample([-10, -2, -1, 1, 2, 3, 10, 12], 3)]
        p_ok = r.uniform(0.35, 0.95)
        rest = 1 - p_ok
        table[p.question] = ([p.answer, *wrong], [p_ok, rest * 0.5, rest * 0.3, rest * 0.2])
    draws = random.Random(seed + 1)

    def reply(request: Request) -> list[Sample]:
        text = request.prompt_text()
        question = next(q for q in table if q in text)
        values, weights = table[question]
        out = []
        for _ in range(request.params.n):
            if request.params.temperature == 0:  # a greedy chain: one fixed draw per question
                value = random.Random(f"{seed}:{question}").choices(values, weights)[0]
            else:
                value = draws.choices(values, weights)[0]
            words = " ".join(["step"] * draws.randint(40, 90))
            out.append(Sample(text=f"{words} The answer is {value}.", completion_tokens=len(words.split()) + 5))
        return out

    return FunctionBackend(reply)


REPLAYED_RULES = {
    "exact": EarlyStop(wave=1),
    "conf0.75/min2": EarlyStop(wave=1, confidence=0.75, min_samples=2),
    "conf0.75/min3": EarlyStop(wave=1, confidence=0.75, min_samples=3),
    "conf1.0/min3": EarlyStop(wave=1, confidence=1.0, min_samples=3),
    "conf0.7/min2": EarlyStop(wave=1, confidence=0.7, min_samples=2),
    "margin2/min2": EarlyStop(wave=1, margin=2, min_samples=2),
    "margin3/min3": EarlyStop(wave=1, margin=3, min_samples=3),
    "margin2+fail3": EarlyStop(wave=1, margin=2, failure_margin=3),
    "conf0.75+fail3": EarlyStop(wave=1, confidence=0.75, failure_margin=3),
}


def replay_rules(vote8: dict[str, Any], problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """Each stopping rule replayed on vote8's recorded samples, in order (waves of one).

    With a common seed the engine draws the same sample i in either arm, so
    these are the figures an early8 run with that rule would give (the early8
    arm checks one of them for real).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, rule in REPLAYED_RULES.items():
        correct = tokens = samples = 0
        for problem, votes in zip(problems, vote8["votes"] or []):
            if votes is None:
                continue
            drawn: list[Candidate] = []
            for i, (value, spent) in enumerate(votes):
                drawn.append(Candidate(index=i, value=value, completion_tokens=spent,
                                       error=None if value is not None else "failed"))
                if rule.should_stop(drawn, len(votes) - len(drawn)):
                    break
            if any(c.ok for c in drawn):
                decision = anyio.run(rule.decide, drawn)  # the vote's own tie rule
                correct += drawn[decision.winner_index].value == problem.answer
            tokens += sum(c.completion_tokens for c in drawn)
            samples += len(drawn)
        out[name] = {"accuracy": correct / len(problems), "tokens": tokens, "samples": samples,
                     "saved": 1 - tokens / vote8["tokens"] if vote8["tokens"] else 0.0}
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    problems = generate(args.n, args.seed)
    graphs = arms(args)
    if args.simulate:
        backend = simulated_backend(problems, args.seed)
    else:
        try:
            from plait.executors import backend_for
        except ImportError:
            sys.exit("--model needs plait's vLLM backend (plait.executors.backend_for), which this install lacks; "
                     "use --simulate to check the mechanics without a model")
        backend = backend_for(args.model)
    results: dict[str, Any] = {}
    async with backend:
        for name, graph in graphs.items():
            results[name] = row = await run_arm(graph, problems, backend, args.concurrency)
            print(f"{name}: accuracy {row['accuracy']:.3f}, {row['tokens']} generated tokens, {row['seconds']} s",
                  file=sys.stderr, flush=True)  # partial figures survive a kill
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="model for the vLLM backend")
    parser.add_argument("--simulate", action="store_true", help="use a seeded stand-in model instead of vLLM")
    parser.add_argument("--n", type=int, default=40, help="number of questions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=256, help="per sample (128 truncated qwen's reasoning)")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature of the vote arms")
    parser.add_argument("--wave", type=int, default=1,
                        help="early stop: samples per wave (1: the rule is consulted after every sample)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="early stop: also stop once the leader holds this share of the votes (default: off)")
    parser.add_argument("--margin", type=int, default=0,
                        help="early stop: also stop once the leader is this many votes ahead (0: off)")
    parser.add_argument("--failure-margin", type=int, default=0,
                        help="early stop: also stop once failed samples outnumber the leader's votes by this many "
                             "(0: off)")
    parser.add_argument("--min-samples", type=int, default=None,
                        help="early stop: samples needed before the confidence or margin rule applies "
                             "(default: one wave)")
    parser.add_argument("--sample-seed", type=int, default=1, help="sampling seed of both votes (sample i: seed + i)")
    parser.add_argument("--arms", default="single,vote8,early8", help="comma-separated arms to run")
    parser.add_argument("--concurrency", type=int, default=16, help="questions in flight at once")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args()

    results = anyio.run(main_async, args)
    source = "simulated model" if args.simulate else args.model
    print(f"{args.n} word problems (seed {args.seed}), {source}")
    print(f"{'arm':<8}{'accuracy':>10}{'gen tokens':>12}{'samples':>9}{'failed':>8}{'seconds':>9}")
    for name, row in results.items():
        print(f"{name:<8}{row['accuracy']:>10.3f}{row['tokens']:>12}{row['samples']:>9}{row['failed_runs']:>8}"
              f"{row['seconds']:>9}")
    for name, row in results.items():
        for error in row["first_errors"]:
            print(f"  {name} failure: {error}")
    if {"single", "vote8", "early8"} <= set(results):
        v, e, s = results["vote8"], results["early8"], results["single"]
        saved = 1 - e["tokens"] / v["tokens"] if v["tokens"] else 0.0
        print(f"vote8 - single accuracy: {v['accuracy'] - s['accuracy']:+.3f}; early8 - vote8 accuracy: "
              f"{e['accuracy'] - v['accuracy']:+.3f}; early8 generated {saved:.1%} fewer tokens than vote8")
    replayed = replay_rules(results["vote8"], generate(args.n, args.seed)) if "vote8" in results else {}
    if replayed:
        print("stopping rules replayed on vote8's samples (waves of one):")
        for name, row in replayed.items():
            print(f"  {name:<14} accuracy {row['accuracy']:.3f}, {row['tokens']} tokens ({row['saved']:.1%} fewer), "
                  f"{row['samples']} samples")
    if args.json:
        out = {name: {"accuracy": row["accuracy"], "tokens": row["tokens"]} for name, row in results.items()}
        out["replayed_rules"] = replayed
        out["details"] = {"source": source, "n": args.n, "seed": args.seed, "arms": results,
                          "early_stop": {"wave": args.wave, "confidence": args.confidence, "margin": args.margin,
                                         "failure_margin": args.failure_margin,
                                         "min_samples": args.min_samples},
                          "sample_seed": args.sample_seed}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
