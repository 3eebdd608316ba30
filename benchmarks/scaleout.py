"""Scale-out: (a) routing over two vLLM servers, round-robin vs prefix vs program affinity; (b) Ray batch runs.

(a) Two vLLM OpenAI servers of the random model, one core and a KV cache of
``--blocks`` 32-token blocks each, serve the same workload (``--programs``
runs, ``--concurrency`` at a time; each run a long document asked three k=8
fan-outs and walked by a subtask tree, see ``_scaleout_routing``) through an
``EndpointPool`` with each routing. Each arm gets documents of its own, so it
starts with nothing of its own cached. Reported per arm: the prefix-cache hit
rate and the prompt tokens prefilled (from the servers' ``/metrics``), and
the wall time; medians over ``--repeats`` rounds (the arms take turns).
Goal (issue 15): program affinity at least 1.5x the hit rate of round-robin,
and lower wall time. vLLM counts each of a fan-out's ``n=8`` samples as a
query of the whole prompt, and seven of them hit whatever the routing, so on
a fan-out-heavy workload the hit rate of any routing stays high; the prompt
tokens prefilled show the difference routing makes.

(b) ``_scaleout_ray.measure([1, 2], 1000)`` (a CPU-heavy batch on a local
Ray cluster with 1 and 2 workers), when that module and Ray are there and
``--ray`` is on (the default).

    python benchmarks/scaleout.py [--json out.json] [--no-ray] [--programs 24] [--repeats 3]

Starts vLLM: run it alone, under the machine's lock (``flock /tmp/vllm.lock ...``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scaleout_routing import MODEL, measure, vllm_servers  # noqa: E402

from plait.executors import pull_model  # noqa: E402

ARMS = {"round_robin": "round-robin", "prefix": "prefix", "program": "program"}


def routing_table(args: argparse.Namespace) -> dict[str, dict]:
    rounds: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    with vllm_servers(str(pull_model(args.model)), 2, blocks=args.blocks) as servers:
        urls = [s.url for s in servers]
        measure(urls, "round-robin", programs=2, concurrency=2, words=args.words, salt=999)  # warm-up
        for r in range(args.repeats):
            for a, (arm, routing) in enumerate(ARMS.items()):
                rounds[arm].append(measure(urls, routing, programs=args.programs, concurrency=args.concurrency,
                                           words=args.words, salt=1 + r * len(ARMS) + a))
                print(f"round {r + 1} {arm}: {rounds[arm][-1]}", file=sys.stderr)
    return {arm: {"hit_rate": round(statistics.median(x["hit_rate"] for x in runs), 4),
                  "prefill_tokens": int(statistics.median(x["prefill_tokens"] for x in runs)),
                  "wall_s": round(statistics.median(x["wall_s"] for x in runs), 3)} for arm, runs in rounds.items()}


def ray_table(enabled: bool) -> dict | None:
    if not enabled:
        return None
    try:
        import _scaleout_ray  # the Ray half (its own module)
    except ImportError as exc:
        print(f"(ray half skipped: {exc})", file=sys.stderr)
        return None
    return _scaleout_ray.measure([1, 2], 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--programs", type=int, default=24, help="runs per arm")
    parser.add_argument("--concurrency", type=int, default=8, help="runs in flight at once")
    parser.add_argument("--words", type=int, default=600, help="words of each run's document (its shared prefix)")
    parser.add_argument("--blocks", type=int, default=160, help="KV-cache blocks of 32 tokens per server")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the Ray half (_scaleout_ray), when it is there")
    args = parser.parse_args()

    routing = routing_table(args)
    base = routing["round_robin"]
    print(f"\n(a) routing over 2 vLLM servers ({args.model}, 1 core and {args.blocks} KV blocks each; "
          f"{args.programs} runs, {args.concurrency} at a time; medians of {args.repeats})")
    print(f"{'routing':<12} {'hit rate':>9} {'vs rr':>6} {'prefilled':>10} {'vs rr':>6} {'wall s':>8} {'vs rr':>6}")
    for arm, row in routing.items():
        ratio = row["hit_rate"] / base["hit_rate"] if base["hit_rate"] else float("nan")
        prefilled = row["prefill_tokens"] / base["prefill_tokens"] if base["prefill_tokens"] else float("nan")
        print(f"{arm:<12} {row['hit_rate']:>9.3f} {ratio:>5.2f}x {row['prefill_tokens']:>10} {prefilled:>5.2f}x "
              f"{row['wall_s']:>8.2f} {row['wall_s'] / base['wall_s']:>5.2f}x")
    figures: dict = {"routing": routing}
    ray = ray_table(args.ray)
    if ray is not None:
        figures["ray"] = ray
        print("\n(b) Ray batch:", json.dumps(ray))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
