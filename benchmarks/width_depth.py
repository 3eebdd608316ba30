"""Width or depth at equal token budgets, on reasoning-gym's generated tasks (issue 17).

Families: word problems where width should win (``gsm_symbolic``,
``basic_arithmetic``) and compositional tasks where depth should win
(``shortest_path``, ``family_relationships``, ``maze``); questions from
``reasoning_gym.create_dataset(family, size=n, seed=seed)`` with seed >= 100,
scored by the family's own ``score_answer`` (1.0 counts as correct).

One chain is ``--chain-tokens`` C generated tokens. At budget m (``--budgets``,
default 1,4,8) every arm may generate at most m*C tokens per question:

* ``chain@m``: one greedy chain of up to m*C tokens (depth: the chain may go on);
* ``vote@m``: majority vote of m sampled chains of C tokens (one n-request);
* ``staggered@m``: the same vote with its samples spread over 4 prompt
  variants (``FanOut(variants=...)``: one n-request per variant, shared prefix);
* ``adaptive@m``: ``Adaptive`` (wave, widen, then deepen) under budget m: m*C
  generated tokens plus its at most 3 prompts (its budget counts prompts);
* ``refine_fixed_point`` / ``refine_3``: ``Refine`` of one chain with critique
  and revise calls of C tokens each, halting at a fixed point (at most 3
  rounds) vs exactly 3 rounds (not tied to a budget: its tokens are reported).

Reported per family and arm: accuracy with its Wilson 95% interval, generated
tokens, n. ``--json PATH`` writes ``{"model": s, "families": {FAMILY: {ARM:
{"accuracy": f, "tokens": n, "n": n, "ci95": [lo, hi], "prompt_tokens": n}}}}``
(tokens: generated tokens summed over the n questions). Questions run in order,
each across every family and arm, and the JSON is rewritten as each finishes;
a family's figures cover only the questions all its arms have finished, so arms
are compared on the same questions even in a run cut short. ``--results
PATH`` keeps every question's outcome (JSONL), and a later run given the same
file skips what it holds: runs too long for one sitting add up.

    python benchmarks/width_depth.py --model qwen2.5-coder-1.5b --json out.json          # the issue's sizes
    flock /tmp/vllm.lock timeout 900 python benchmarks/width_depth.py --model qwen2.5-coder-0.5b --n 6 --budgets 1,4
    python benchmarks/width_depth.py --simulate --n 4    # a seeded stand-in model: the mechanics only
    python benchmarks/width_depth.py --model qwen2.5-coder-1.5b --results wd.jsonl --max-seconds 3000 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from plait import FunctionBackend, Graph, Refine, Request, SamplingParams
from plait.executors import Sample
from plait.planners import ChainStep, FanOut, Majority, Parser, VoteResult
from plait.planners import RefineResult

FAMILIES = {"gsm_symbolic": "width", "basic_arithmetic": "width", "shortest_path": "depth",
            "family_relationships": "depth", "maze": "depth"}
NUMERIC = {"gsm_symbolic", "basic_arithmetic", "maze"}
SYSTEM = "Solve the problem step by step. End with a last line of the form 'Answer: <answer>'."
# Smaller instances than reasoning-gym's defaults (``--difficulty small``), where a 1.5B model is neither at 0
# nor at 1 on the compositional families, so arms can differ: still several dependent steps per question.
SMALL = {"basic_arithmetic": {"min_terms": 3, "max_terms": 5, "max_digits": 3},
         "maze": {"min_dist": 4, "max_dist": 7, "min_grid_size": 6, "max_grid_size": 7},
         "shortest_path": {"min_rows": 4, "max_rows": 5, "min_cols": 4, "max_cols": 5},
         "family_relationships": {"min_family_size": 4, "max_family_size": 6}}
VARIANTS = ["Work it out step by step.",
            "First restate what is asked in one line, then solve it step by step.",
            "Solve it, checking each intermediate result before you use it.",
            "Solve it, then check the answer another way before you give it."]


PROMPT_ID = hashlib.sha1("\n".join([SYSTEM, *VARIANTS]).encode()).hexdigest()[:8]  # results keyed by prompt too

_KIN = (r"\b(?:(?:great-)*grand)?(?:father|mother|son|daughter|parent|child|uncle|aunt|nephew|niece)(?:-in-law)?\b"
        r"|\b(?:husband|wife|spouse|brother|sister|sibling|cousin)(?:-in-law)?\b")


class FinalAnswer(Parser[str]):
    """The text after the last 'Answer:' (else the reply's last line), normalized so equal answers vote together."""

    def __init__(self, family: str):
        super().__init__(constrain=False)
        self.family = family

    def parse(self, text: str) -> str:
        marked = re.findall(r"answer\s*[:=]\s*(.+)", text, flags=re.IGNORECASE)
        lines = [line for line in text.strip().splitlines() if line.strip()]
        tail = (marked[-1] if marked else lines[-1] if lines else "").strip().strip("*`. ").lower()
        if self.family in NUMERIC:
            numbers = re.findall(r"-?\d+(?:\.\d+)?", tail.replace(",", "")) or \
                re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
            if not numbers:
                raise self._fail("no number in the reply", text)
            return numbers[-1]
        if self.family == "shortest_path":
            moves = re.findall(r"\b(up|down|left|right|infeasible)\b", tail)
            if not moves:
                raise self._fail("no moves in the answer", text)
            return " ".join(moves)
        kin = re.findall(_KIN, tail)  # "Daniel is Logan's son": the relation, not the first name
        if kin:
            return kin[-1]
        words = re.findall(r"[a-z-]+", tail)
        if not words:
            raise self._fail("no word in the answer", text)
        return words[-1]


def step(family: str, max_tokens: int, temperature: float = 0.0, staggered: bool = False) -> ChainStep:
    user = "{question}\n\n" + ("{variant}" if staggered else VARIANTS[0])
    return ChainStep([("system", SYSTEM), ("user", user)], FinalAnswer(family), max_reasks=0, name="solve",
                     sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens))


def arms(family: str, budgets: list[int], c: int, seed: int, prompt: int) -> dict[str, Graph]:
    """Every arm of one family as a graph with one node; input: question."""
    out: dict[str, Graph] = {}

    def graph(name: str, node: Any) -> None:
        out[name] = Graph(name.replace("@", "_at_"))
        out[name].add(node)

    sampled = SamplingParams(temperature=0.7, max_tokens=c, seed=seed)
    for m in budgets:
        graph(f"chain@{m}x", step(family, m * c))
        if m > 1:  # a vote of one sample is a (sampled) chain
            graph(f"vote@{m}x", FanOut(step(family, c), k=m, aggregate=Majority(), sampling=sampled, name="vote"))
            graph(f"staggered@{m}x", FanOut(step(family, c, staggered=True), k=m, aggregate=Majority(),
                                            sampling=sampled, variants=VARIANTS, name="vote"))
            adaptive = _adaptive(family, m, c, seed, prompt)
            if adaptive is not None:
                graph(f"adaptive@{m}x", adaptive)
    graph("refine_fixed_point", Refine(step(family, c), max_iterations=3, name="refine"))
    graph("refine_3", Refine(step(family, c), max_iterations=3, until=None, name="refine"))
    return out


def _adaptive(family: str, m: int, c: int, seed: int, prompt: int) -> Any:
    """The adaptive width-then-depth node under budget m (None when this plait has none).

    Its budget counts prompts too: m*C generated tokens plus its (at most 3) prompts of up to ``prompt`` tokens.
    """
    try:
        from plait.planners import Adaptive
    except ImportError:
        return None
    wave, width = (2, 3) if m <= 4 else (3, m - 2)
    return Adaptive(step(family, c), budget=m * c + 3 * prompt, wave=wave, max_width=width,
                    sampling=SamplingParams(temperature=0.7, max_tokens=c, seed=seed), name="vote")


def answer_of(output: Any) -> Any:
    if isinstance(output, VoteResult):
        return output.winner
    if isinstance(output, RefineResult):
        return output.answer
    return getattr(output, "winner", getattr(output, "answer", output))


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound at small n and at 0 or n successes)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


class Tally:
    """One arm's running figures on one family (questions finish in any order; the JSON is rewritten as they do)."""

    def __init__(self) -> None:
        self.correct = self.tokens = self.prompt = self.failed = self.n = 0
        self.refine: list[tuple[int, str]] = []
        self.misses: list[dict[str, str]] = []  # the first wrong answers, to tell a wrong answer from a misread one

    def add(self, outcome: dict[str, Any]) -> None:
        """Count one question's outcome (as :func:`run_one` returns it, or as a ``--results`` file kept it)."""
        self.n += 1
        self.correct += bool(outcome["correct"])
        self.failed += bool(outcome["failed"])
        self.tokens += int(outcome["tokens"])
        self.prompt += int(outcome["prompt"])
        if outcome.get("rounds") is not None:
            self.refine.append((int(outcome["rounds"]), str(outcome["stopped"])))
        if not outcome["correct"] and len(self.misses) < 2:
            self.misses.append({"expected": str(outcome["expected"])[:80], "got": str(outcome["got"])[:200]})

    def row(self) -> dict[str, Any]:
        row = {"accuracy": round(self.correct / self.n, 4) if self.n else 0.0, "tokens": self.tokens, "n": self.n,
               "ci95": list(wilson(self.correct, self.n)), "prompt_tokens": self.prompt, "failed": self.failed}
        if self.refine:
            row["rounds"] = round(sum(r for r, _ in self.refine) / len(self.refine), 2)
            row["stopped_at_fixed_point"] = sum(s == "fixed_point" for _, s in self.refine)
        row["first_misses"] = self.misses
        return row


async def run_one(graph: Graph, entry: dict, dataset: Any, backend: Any) -> dict[str, Any]:
    """One question on one arm: right or not, and the tokens it took (a run that failed is wrong, its tokens count)."""
    outcome: dict[str, Any] = {"expected": str(entry["answer"])[:80], "failed": False, "rounds": None, "stopped": None}
    try:
        result = await graph.run({"question": entry["question"]}, backend=backend)
    except Exception as exc:  # no parsable answer
        partial = getattr(exc, "partial", None)
        tokens = partial.tokens if partial is not None else None
        return {**outcome, "correct": False, "failed": True, "got": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:200],
                "tokens": tokens.completion_tokens if tokens else 0, "prompt": tokens.prompt_tokens if tokens else 0}
    answer = answer_of(result.output)
    right = answer is not None and dataset.score_answer(str(answer), entry) >= 1.0
    outcome.update(correct=right, got=str(answer)[:200], tokens=result.tokens.completion_tokens,
                   prompt=result.tokens.prompt_tokens)
    if isinstance(result.output, RefineResult):
        outcome.update(rounds=result.output.rounds, stopped=result.output.stopped)
    return outcome


def load_results(path: str | None, key: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Outcomes a ``--results`` file kept from earlier runs of the same model, seed and chain length."""
    if not path or not Path(path).exists():
        return {}
    done = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a stopped run
            continue
        if all(row.get(k) == v for k, v in key.items()):
            done[row["family"], row["arm"], row["i"]] = row
    return done


def simulated_backend(entries: list[dict], seed: int) -> FunctionBackend:
    """A stand-in: right with a per-question probability, else one of two wrong answers; critiques say 'ok'."""
    rng = random.Random(seed)
    odds = {e["question"]: (str(e["answer"]), rng.uniform(0.3, 0.9)) for e in entries}

    def reply(request: Request) -> list[Sample]:
        text = request.prompt_text()
        truth, p = next(v for q, v in odds.items() if q in text)
        out = []
        for _ in range(request.params.n):
            if text.rstrip().endswith("Check:"):
                out.append(Sample(text="It looks correct.", completion_tokens=4))
                continue
            value = truth if rng.random() < p else rng.choice(["7", "left", "uncle"])
            out.append(Sample(text=f"step step step\nAnswer: {value}", completion_tokens=8))
        return out

    return FunctionBackend(reply)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import reasoning_gym

    budgets = [int(b) for b in args.budgets.split(",")]
    sizes = SMALL if args.difficulty == "small" else {}
    data = {f: reasoning_gym.create_dataset(f, size=args.n, seed=args.seed, **sizes.get(f, {}))
            for f in args.families.split(",")}
    entries = {f: [ds[i] for i in range(args.n)] for f, ds in data.items()}
    if args.simulate:
        backend: Any = simulated_backend([e for es in entries.values() for e in es], args.seed)
    else:
        from plait.executors import backend_for

        backend = backend_for(args.model)
    report: dict[str, Any] = {"model": "simulated" if args.simulate else args.model, "families": {},
                              "details": {"n": args.n, "seed": args.seed, "chain_tokens": args.chain_tokens,
                                          "budgets": budgets, "generated_tokens_per_unit": args.chain_tokens,
                                          "difficulty": args.difficulty, "prompt_id": PROMPT_ID}}
    limiter = anyio.CapacityLimiter(args.concurrency)
    t0 = time.perf_counter()
    outcomes: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    key = {"model": report["model"], "seed": args.seed, "chain_tokens": args.chain_tokens,
           "difficulty": args.difficulty, "prompt_id": PROMPT_ID}
    kept = load_results(args.results, key)

    def write() -> None:
        for family in entries:
            names = [name for f, name in outcomes if f == family]
            common = set.intersection(*(set(outcomes[family, name]) for name in names))
            for name in names:  # every arm over the same questions: those all its family's arms have finished
                tally = Tally()
                for i in sorted(common):
                    tally.add(outcomes[family, name][i])
                if tally.n:
                    report["families"].setdefault(family, {})[name] = tally.row()
        report["details"]["seconds"] = round(time.perf_counter() - t0, 1)
        if args.json:  # rewritten as questions finish: a run cut short keeps what it measured
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2)

    async def job(family: str, name: str, graph: Graph, i: int) -> None:
        async with limiter:
            outcome = await run_one(graph, entries[family][i], data[family], backend)
        outcomes[family, name][i] = outcome
        if args.results:  # appended as it finishes: a later run with --results goes on from here
            with open(args.results, "a", encoding="utf-8") as f:
                f.write(json.dumps({**key, "family": family, "arm": name, "i": i, **outcome}) + "\n")
        write()
        if all(i in done for (f, _), done in outcomes.items() if f == family):
            print(f"{family}: question {i} done on every arm ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                  flush=True)

    async with backend:
        graphs: dict[str, dict[str, Graph]] = {}
        for family in entries:
            prompt = max(backend.count_prompt_tokens(step(family, 1).request({"question": e["question"]}))
                         for e in entries[family])
            graphs[family] = arms(family, budgets, args.chain_tokens, args.seed, prompt)
            for name in graphs[family]:
                outcomes[family, name] = {}
        with anyio.move_on_after(args.max_seconds) as scope:  # questions in flight then are not counted
            async with anyio.create_task_group() as tg:  # question by question over every family and arm
                for i in range(args.n):
                    for family, family_arms in graphs.items():
                        for name, graph in family_arms.items():
                            if (family, name, i) in kept:
                                outcomes[family, name][i] = kept[family, name, i]
                            else:
                                tg.start_soon(job, family, name, graph, i)
        report["details"]["cut_at_max_seconds"] = scope.cancelled_caught
    write()
    return report


def table(report: dict[str, Any]) -> str:
    cut = " (cut at --max-seconds)" if report["details"].get("cut_at_max_seconds") else ""
    lines = [f"model {report['model']}, up to {report['details']['n']} questions per family{cut} "
             f"(seed {report['details']['seed']}), one chain = {report['details']['chain_tokens']} generated tokens",
             "| family | arm | n | accuracy | 95% CI | generated tokens / question |", "|---|---|---|---|---|---|"]
    for family, rows in report["families"].items():
        for name in sorted(rows, key=_arm_order):
            row = rows[name]
            lines.append(f"| {family} ({FAMILIES.get(family, '?')}) | {name} | {row['n']} | {row['accuracy']:.2f} | "
                         f"{row['ci95'][0]:.2f}-{row['ci95'][1]:.2f} | {row['tokens'] / max(row['n'], 1):.0f} |")
    return "\n".join(lines)


def _arm_order(name: str) -> tuple:
    kind, _, budget = name.partition("@")
    order = ["chain", "vote", "staggered", "adaptive", "refine_fixed_point", "refine_3"]
    return (int(budget.rstrip("x") or 10**6), order.index(kind) if kind in order else 99)  # refine arms last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="model for the vLLM backend")
    parser.add_argument("--simulate", action="store_true", help="a seeded stand-in model instead of vLLM")
    parser.add_argument("--n", type=int, default=100, help="questions per family")
    parser.add_argument("--seed", type=int, default=100, help="reasoning-gym dataset seed (>= 100)")
    parser.add_argument("--budgets", default="1,4,8", help="budgets in units of one chain, comma-separated")
    parser.add_argument("--chain-tokens", type=int, default=256, help="generated tokens of one chain (C)")
    parser.add_argument("--difficulty", choices=["default", "small"], default="default",
                        help="reasoning-gym's default instance sizes, or the smaller ones in SMALL")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated reasoning-gym families")
    parser.add_argument("--concurrency", type=int, default=32, help="graph runs in flight at once")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop after this long (engine start excluded); the questions finished by then count")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--results", metavar="PATH",
                        help="JSONL of every question's outcome, appended as each finishes; questions already in "
                             "it (same model, seed, chain tokens) are not run again, so runs add up across sessions")
    args = parser.parse_args()
    if args.seed < 100:
        parser.error("--seed must be >= 100 (seeds below are kept for development)")
    unknown = sorted(set(args.families.split(",")) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; choose from {sorted(FAMILIES)}")
    report = anyio.run(main_async, args)
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
