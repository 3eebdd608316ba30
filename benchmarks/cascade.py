"""Several models: small alone, large alone, a small->large cascade and a learned router, side by side.

Items are reasoning-gym's public generators ``gsm_symbolic`` and
``basic_arithmetic`` (half each; seeds ``--seed`` and ``--seed + 1``, >= 100),
scored by reasoning-gym's own scorer. Two vLLM OpenAI servers run side by
side, qwen2.5-coder-0.5b ("small") on core 0 and qwen2.5-coder-1.5b ("large")
on core 1 (``VLLM_CPU_OMP_THREADS_BIND``), and every arm is one plait graph
run over both (``backends={"small": ..., "large": ...}``), ``--concurrency``
items at a time:

* ``small`` / ``large``: one greedy chain-of-thought answer from that model;
* ``cascade``: ``Cascade`` of a k-sample vote on the small model, accepted when
  its agreement reaches the threshold, else the large model's greedy answer.
  The threshold is ``--threshold``, or with ``--threshold auto`` (the default)
  learned on the calibration items: the lowest agreement at which the
  calibrated cascade is at most ``--max-loss`` below the large model alone
  there (so the fewest escalations that keep the large model's accuracy);
* ``router``: ``RouteModel`` with a ``RouteTable`` learned from both models'
  greedy answers on ``--calibrate`` other items (seeds + 1000), by kind of
  question (arithmetic expression or word problem). Calibration tokens (both
  models' answers, the small vote's) are reported apart (``calibration``), not
  in the arms.

Per arm: accuracy, tokens (prompt + completion) per model, wall time.
Target (issue 18): the cascade within 2 points of large-alone accuracy with at
least 40% fewer large-model tokens.

    python benchmarks/cascade.py [--n 40] [--json out.json]    # starts vLLM: run under flock /tmp/vllm.lock
    python benchmarks/cascade.py --simulate --n 8              # seeded stand-in models, no vLLM
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plait import FunctionBackend, Graph, SamplingParams  # noqa: E402
from plait.planners import (  # noqa: E402
    Cascade, CascadeResult, ChainStep, FanOut, NumberParser, RouteModel, RouteTable, VoteResult, agreement,
)

TASKS = ("gsm_symbolic", "basic_arithmetic")
MODELS = {"small": "qwen2.5-coder-0.5b", "large": "qwen2.5-coder-1.5b"}
# benchmarks/voting.py's prompt. A terser one ("Be brief ... End with 'The answer is N.'") made both qwen models
# skip the working and often write the letter N (measured here: every arm near 10% accuracy).
SYSTEM = "Solve the problem. Reason briefly step by step, then end with 'The answer is N.'"


@dataclass(frozen=True)
class Item:
    task: str
    question: str
    answer: str
    entry: dict


def items(n: int, seed: int) -> list[Item]:
    """``n`` items, alternating tasks; task t uses seed ``seed + t``."""
    import reasoning_gym

    sizes = [n // 2 + n % 2, n // 2]
    sets = [reasoning_gym.create_dataset(task, seed=seed + t, size=max(size, 1))
            for t, (task, size) in enumerate(zip(TASKS, sizes))]
    out = []
    for i in range(n):
        t = i % 2
        entry = sets[t][i // 2]
        out.append(Item(TASKS[t], entry["question"], str(entry["answer"]), entry))
    return out


def score(item: Item, answer: Any) -> float:
    """reasoning-gym's score of ``answer`` for ``item`` (0 for no answer)."""
    if answer is None:
        return 0.0
    import reasoning_gym

    text = str(int(answer)) if isinstance(answer, float) and answer.is_integer() else str(answer)
    return reasoning_gym.get_score_answer_fn(item.task)(answer=text, entry=item.entry)


def kind(question: str) -> str:
    """What the router tells apart: a bare arithmetic expression, or a word problem."""
    return "arithmetic" if question.lstrip().startswith("Calculate") else "word"


def solver(max_tokens: int, **kw: Any) -> ChainStep:
    return ChainStep([("system", SYSTEM), ("user", "{question}")], NumberParser(float, constrain=False),
                     sampling=SamplingParams(temperature=0.0, max_tokens=max_tokens), max_reasks=0, **kw)


def answer(max_tokens: int, **kw: Any) -> FanOut:
    """One greedy answer, the same in every arm (a reply cut at ``max_tokens`` is still read for its number)."""
    greedy = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    return FanOut(solver(max_tokens), k=1, sampling=greedy, keep_truncated=True, **kw)


def small_vote(args: argparse.Namespace) -> FanOut:
    sampling = SamplingParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)
    return FanOut(solver(args.max_tokens), k=args.k, sampling=sampling, name="small_vote", model="small")


def single(node: Any, name: str) -> Graph:
    g = Graph(name)
    g.add(node)
    return g


def cascade(args: argparse.Namespace, threshold: float) -> Graph:
    return single(Cascade([small_vote(args), answer(args.max_tokens, name="large_answer", model="large")],
                          accept=agreement(threshold)), "cascade")


def router(table: RouteTable, max_tokens: int) -> Graph:
    return single(RouteModel(table, routes=["small", "large"], step=answer(max_tokens, name="solve")), "router")


def learn_threshold(k: int, votes: list[tuple[float, float]], large: list[float], max_loss: float) -> float:
    """The lowest agreement at which accepting the small vote (else the large answer) keeps accuracy within
    ``max_loss`` of the large model alone on the calibration items; ``votes`` is (agreement, score) per item."""
    target = sum(large) / len(large) - max_loss
    for threshold, accept in thresholds(k, [a for a, _ in votes]):
        if cascade_accuracy(accept, [v for _, v in votes], large) >= target - 1e-9:
            return threshold
    return 1.0


def thresholds(k: int, agreements: list[float]) -> list[tuple[float, list[bool]]]:
    """Each agreement level a k-sample vote can reach, lowest first, with which items it would accept."""
    levels = sorted({round(j / k, 4) for j in range(1, k + 1)})
    return [(t, [a >= t for a in agreements]) for t in levels]


def cascade_accuracy(accept: list[bool], vote: list[float], large: list[float]) -> float:
    """Accuracy of the small vote where accepted, the large answer elsewhere."""
    return sum(v if ok else s for ok, v, s in zip(accept, vote, large)) / len(accept)


async def run_arm(graph: Graph, batch: list[Item], backends: dict, concurrency: int) -> dict[str, Any]:
    """Accuracy, tokens per model and wall time of ``graph`` over ``batch``; plus what each run did."""
    scores: list[float] = [0.0] * len(batch)
    tokens: dict[str, int] = {}
    item_tokens: list[int] = [0] * len(batch)
    outputs: list[Any] = [None] * len(batch)
    failed, errors = 0, []
    limiter = anyio.CapacityLimiter(concurrency)

    def count(result: Any) -> None:
        for model, usage in result.tokens_by_model.items():
            tokens[model] = tokens.get(model, 0) + usage.total

    async def one(i: int, item: Item) -> None:
        nonlocal failed
        async with limiter:
            try:
                result = await graph.run({"question": item.question}, backends=backends)
            except Exception as exc:  # no answer at all (unparsable reply): scored 0
                failed += 1
                if len(errors) < 3:
                    errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
                if getattr(exc, "partial", None) is not None:
                    count(exc.partial)
                return
        count(result)
        item_tokens[i] = result.tokens.total
        outputs[i] = result.output
        value = result.output.value if isinstance(result.output, CascadeResult) else result.output
        scores[i] = score(item, value.winner if isinstance(value, VoteResult) else value)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for i, item in enumerate(batch):
            tg.start_soon(one, i, item)
    report = {"accuracy": round(sum(scores) / len(batch), 4), "tokens": dict(sorted(tokens.items())),
              "wall_s": round(time.perf_counter() - start, 1), "failed_runs": failed, "first_errors": errors}
    cascades = [o for o in outputs if isinstance(o, CascadeResult)]
    if cascades:
        report["escalated"] = sum(o.tier != 0 for o in cascades)
    report["scores"] = scores
    report["outputs"] = outputs
    report["item_tokens"] = item_tokens
    return report


def sweep(k: int, vote: dict[str, Any], large: dict[str, Any]) -> list[dict[str, Any]]:
    """After the fact, on the measured items: what each agreement threshold would have given (accuracy, large
    tokens, escalations). Not how the threshold is chosen (that is learned on the calibration items): it shows
    whether any threshold could meet the target with this pair of models."""
    agreements = [o.agreement if isinstance(o, VoteResult) else 0.0 for o in vote["outputs"]]
    return [{"threshold": threshold, "accuracy": round(cascade_accuracy(accept, vote["scores"], large["scores"]), 4),
             "large_tokens": sum(t for ok, t in zip(accept, large["item_tokens"]) if not ok),
             "escalated": accept.count(False)} for threshold, accept in thresholds(k, agreements)]


async def calibrate(args: argparse.Namespace, backends: dict) -> tuple[RouteTable, float, dict[str, Any]]:
    """Both models' greedy answers on the calibration items, learned into a RouteTable; and the cascade's
    threshold (``--threshold``, or learned from the small vote on the same items)."""
    batch = items(args.calibrate, args.seed + 1000)
    rows, figures, scores = [], {}, {}
    for model in ("small", "large"):
        report = await run_arm(single(answer(args.max_tokens, name="solve", model=model), model), batch, backends,
                               args.concurrency)
        figures[model] = {k: report[k] for k in ("accuracy", "tokens", "wall_s")}
        scores[model] = report["scores"]
        rows += [({"question": item.question}, model, s >= 1.0) for item, s in zip(batch, report["scores"])]
    table = RouteTable.learn(rows, kind=kind, cost={"small": 1, "large": 3}, tolerance=args.tolerance)
    figures["choices"] = dict(table.choices)
    figures["fallback"] = table.fallback
    if args.threshold != "auto":
        return table, float(args.threshold), figures
    report = await run_arm(single(small_vote(args), "small_vote"), batch, backends, args.concurrency)
    votes = [(o.agreement if isinstance(o, VoteResult) else 0.0, s) for o, s in zip(report["outputs"], report["scores"])]
    threshold = learn_threshold(args.k, votes, scores["large"], args.max_loss)
    figures["small_vote"] = {k: report[k] for k in ("accuracy", "tokens", "wall_s")}
    figures["threshold"] = threshold
    return table, threshold, figures


async def measure(args: argparse.Namespace, backends: dict) -> dict[str, Any]:
    """Every arm in turn, in one event loop (an HTTP backend's connections belong to the loop that opened them);
    the figures so far are written to ``--json`` after each arm (a cut-off run keeps them)."""
    batch = items(args.n, args.seed)
    figures: dict[str, Any] = {"arms": {}, "setup": setup(args)}
    table, threshold, figures["calibration"] = await calibrate(args, backends)
    print(f"calibration: {figures['calibration']}", file=sys.stderr)
    kept: dict[str, dict[str, Any]] = {}
    arms = [("small", single(answer(args.max_tokens, name="solve", model="small"), "small")),
            ("large", single(answer(args.max_tokens, name="solve", model="large"), "large")),
            ("cascade", cascade(args, threshold)), ("router", router(table, args.max_tokens))]
    if args.sweep:
        arms.insert(2, ("small_vote", single(small_vote(args), "small_vote")))
    for arm, graph in arms:
        kept[arm] = report = await run_arm(graph, batch, backends, args.concurrency)
        figures["arms"][arm] = {k: v for k, v in report.items() if k not in ("scores", "outputs", "item_tokens")}
        print(f"{arm}: {figures['arms'][arm]}", file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if args.sweep:
        figures["sweep"] = sweep(args.k, kept["small_vote"], kept["large"])
        print(f"sweep: {figures['sweep']}", file=sys.stderr)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def setup(args: argparse.Namespace) -> dict[str, Any]:
    return {"n": args.n, "seed": args.seed, "calibrate": args.calibrate, "k": args.k, "threshold": args.threshold,
            "max_loss": args.max_loss, "temperature": args.temperature,
            "tolerance": args.tolerance, "max_tokens": args.max_tokens, "concurrency": args.concurrency,
            "models": MODELS if not args.simulate else "simulated", "tasks": list(TASKS)}


@contextlib.contextmanager
def served_models() -> Iterator[dict]:
    """The two models, each behind its own vLLM OpenAI server on its own core; stopped on exit."""
    from _scaleout_routing import START_TIMEOUT, Server

    from plait import OpenAIBackend
    from plait.executors import pull_model

    with tempfile.TemporaryDirectory(prefix="plait-cascade-") as folder:
        servers: dict[str, Server] = {}
        try:
            for core, (name, model) in enumerate(MODELS.items()):
                servers[name] = Server(str(pull_model(model)), core, blocks=None, log_dir=Path(folder))
            deadline = time.monotonic() + START_TIMEOUT
            for server in servers.values():
                server.wait_healthy(deadline)
            yield {name: OpenAIBackend(server.url, model=Path(pull_model(MODELS[name])).name, timeout=900.0)
                   for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.kill()


def simulated(args: argparse.Namespace) -> dict:
    """Seeded stand-ins: the small model right on 60% of draws (arithmetic 85%), the large on 85%."""
    answers = {item.question: item.answer for n, s in ((args.n, args.seed), (args.calibrate, args.seed + 1000))
               for item in items(n, s)}

    def model(name: str, p_word: float, p_arith: float) -> FunctionBackend:
        draws: dict[str, int] = {}

        def reply(request: Any) -> str:
            question = request.prompt[-1].content  # the user message
            draw = draws[question] = draws.get(question, -1) + 1 if request.params.temperature > 0 else 0
            rng = random.Random(f"{name}|{question}|{draw}")
            right = rng.random() < (p_arith if kind(question) == "arithmetic" else p_word)
            value = answers[question] if right else str(rng.randint(1, 3) * 7 + 1)
            return f"Step by step... The answer is {value}."

        return FunctionBackend(reply, model=name)

    return {"small": model("small", 0.6, 0.85), "large": model("large", 0.85, 0.85)}


def table(figures: dict) -> str:
    rows = ["| arm | accuracy | small tokens | large tokens | wall s |", "|---|---|---|---|---|"]
    for arm, f in figures["arms"].items():
        rows.append(f"| {arm} | {f['accuracy']:.3f} | {f['tokens'].get('small', 0)} | {f['tokens'].get('large', 0)} "
                    f"| {f['wall_s']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--n", type=int, default=40, help="items per arm (half per task)")
    parser.add_argument("--calibrate", type=int, default=20, help="items the router's table is learned from")
    parser.add_argument("--seed", type=int, default=100, help="reasoning-gym seed (>= 100)")
    parser.add_argument("--k", type=int, default=5, help="samples of the small model's vote")
    parser.add_argument("--threshold", default="auto",
                        help="agreement that accepts the small vote, or 'auto': learned on the calibration items")
    parser.add_argument("--max-loss", type=float, default=0.0,
                        help="accuracy below the large model alone that the learned threshold may give up "
                             "on the calibration items")
    parser.add_argument("--tolerance", type=float, default=0.1,
                        help="accuracy the router's table lets the small model give up against the large one")
    parser.add_argument("--temperature", type=float, default=0.7, help="of the small model's vote samples")
    parser.add_argument("--sweep", action="store_true",
                        help="also run the small vote alone on the items (arm small_vote) and report what every "
                             "threshold would have given there (after the fact: the arms use the learned one)")
    parser.add_argument("--max-tokens", type=int, default=384, help="per answer (qwen's working runs long)")
    parser.add_argument("--concurrency", type=int, default=16, help="items in flight at once")
    parser.add_argument("--simulate", action="store_true", help="seeded stand-in models instead of vLLM")
    args = parser.parse_args()
    if args.n < 2 or args.calibrate < 2 or args.seed < 100:
        parser.error("--n and --calibrate need at least 2 items (one per task), --seed at least 100")
    if args.threshold != "auto":
        try:
            if not 0 < float(args.threshold) <= 1:
                raise ValueError
        except ValueError:
            parser.error(f"--threshold must be 'auto' or a number in (0, 1], got {args.threshold!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` stops us: the servers are stopped too
    if args.simulate:
        figures = anyio.run(measure, args, simulated(args))
    else:
        with served_models() as backends:
            figures = anyio.run(measure, args, backends)
    print(table(figures))


if __name__ == "__main__":
    main()
