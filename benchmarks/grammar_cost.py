"""What decoding under the formulation grammar costs, engine-free: xgrammar's compile time and per-token masks.

vLLM compiles ``FORMULATION_GRAMMAR`` with xgrammar against the model's
vocabulary, then fills a token mask before every decoded token. Both run on
the CPU the model runs on. This measures them directly with xgrammar (no
engine), for the grammar before its simplification (``_grammar_before.py``)
and the current one, in one run: the compile time (xgrammar's cache off, one
thread), then the mask time at every token of each worked example of
``FORMULATION_EXAMPLES``, fed as the model's tokenizer splits it (the mask is
filled, then the token accepted, as the engine does). Times are thread CPU
time (the machines are shared: wall time counts the neighbours), medians over
``--rounds``.

    python benchmarks/grammar_cost.py --model qwen2.5-coder-0.5b --json out.json

Needs xgrammar and transformers (both come with vLLM) and the pulled model's tokenizer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _grammar_before import BEFORE  # noqa: E402

from plait.solvers import FORMULATION_EXAMPLES, FORMULATION_GRAMMAR  # noqa: E402


def tokenizer_info(model: str) -> tuple[Any, Any]:
    """The model's tokenizer and xgrammar's view of its vocabulary (the size vLLM gives it: the model's)."""
    import xgrammar as xgr
    from transformers import AutoConfig, AutoTokenizer

    from plait.executors import model_path

    path = model_path(model) if not Path(model).is_dir() else Path(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    vocab_size = AutoConfig.from_pretrained(path).vocab_size
    return tokenizer, xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)


def measure(grammar: str, tokenizer: Any, info: Any) -> dict[str, Any]:
    """One round: compile seconds, and the mask seconds at every token of every worked example."""
    import xgrammar as xgr

    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    started = time.thread_time()
    compiled = compiler.compile_grammar(grammar)
    compile_s = time.thread_time() - started
    mask = xgr.allocate_token_bitmask(1, info.vocab_size)
    masks: list[float] = []
    for example in FORMULATION_EXAMPLES:
        matcher = xgr.GrammarMatcher(compiled)
        for token in tokenizer.encode(example.formulation):
            started = time.thread_time()
            matcher.fill_next_token_bitmask(mask)
            masks.append(time.thread_time() - started)
            if not matcher.accept_token(token):
                raise SystemExit(f"the grammar refuses token {tokenizer.decode([token])!r} of the worked example "
                                 f"{example.formulation.splitlines()[1]!r}: it must accept every worked example")
        if not matcher.accept_token(tokenizer.eos_token_id):
            raise SystemExit("the grammar does not let a worked example end")
    return {"compile_s": compile_s, "masks": masks}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds of: compile time, total mask time, and the median, 90th percentile and largest mask."""
    def per_round(f: Any) -> float:
        return statistics.median(f(sorted(r["masks"])) for r in rounds)
    return {
        "compile_s": statistics.median(r["compile_s"] for r in rounds),
        "tokens": len(rounds[0]["masks"]),
        "mask_total_s": per_round(sum),
        "mask_median_ms": per_round(lambda m: 1e3 * m[len(m) // 2]),
        "mask_p90_ms": per_round(lambda m: 1e3 * m[int(len(m) * 0.9)]),
        "mask_max_ms": per_round(lambda m: 1e3 * m[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="registry name or model folder (its tokenizer)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; medians are reported (default 3)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    tokenizer, info = tokenizer_info(args.model)
    grammars = {"before": BEFORE, "after": FORMULATION_GRAMMAR}
    figures: dict[str, Any] = {"model": args.model, "vocab_size": info.vocab_size, "rounds": args.rounds,
                               "grammars": {}}
    for name, grammar in grammars.items():
        figures["grammars"][name] = summarize([measure(grammar, tokenizer, info) for _ in range(args.rounds)])
    before, after = figures["grammars"]["before"], figures["grammars"]["after"]
    figures["after_over_before"] = {key: after[key] / before[key] for key in before if key != "tokens" and before[key]}
    print(f"model {args.model} (vocabulary {info.vocab_size}), {before['tokens']} tokens of "
          f"{len(FORMULATION_EXAMPLES)} worked examples, medians of {args.rounds} rounds, thread CPU time")
    print(f"{'grammar':<8} {'compile_s':>10} {'mask_total_s':>13} {'median_ms':>10} {'p90_ms':>8} {'max_ms':>8}")
    for name, f in [*figures["grammars"].items(), ("ratio", figures["after_over_before"])]:
        print(f"{name:<8} {f['compile_s']:>10.3f} {f['mask_total_s']:>13.3f} {f['mask_median_ms']:>10.3f} "
              f"{f['mask_p90_ms']:>8.3f} {f['mask_max_ms']:>8.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
