"""benchmarks/reasoning.py's answer mapping, checked with reasoning-gym's own generators and scorer.

A solution that is right must score 1 on every set (the CSP answer variables rendered as the scorer wants,
the futoshiki grid with its signs), a solution missing an answer variable gives no answer, and the harness
runs its arms end to end on a scripted model that answers right.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import anyio
import pytest

from plait import FunctionBackend
from plait.executors import Choice, Grammar, Regex

pytest.importorskip("reasoning_gym")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import reasoning  # noqa: E402
from _reasoning_sets import ADAPTERS  # noqa: E402

ITEMS = reasoning.load(3, 100)


def truth(item: dict) -> dict:
    """The answer variables' values of the item's known solution."""
    adapter, entry = ADAPTERS[item["set"]], item["entry"]
    meta = entry["metadata"]
    if item["set"] == "cryptarithm":
        return dict(meta["letter_to_digit"])
    if item["set"] in ("futoshiki", "mini_sudoku"):
        return {f"r{r + 1}c{c + 1}": v for r, row in enumerate(meta["solution"]) for c, v in enumerate(row)}
    if item["set"] == "n_queens":
        rows = [line.split() for line in entry["answer"].split("\n")]
        return {f"q{r + 1}": row.index("Q") + 1 for r, row in enumerate(rows)}
    house = adapter.house(entry)
    return {n: house if p == entry["answer"] else house % 5 + 1 for p, n in zip(adapter.people(entry),
                                                                             adapter.names(entry))}


def score(item: dict, answer: str | None) -> float:
    return item["dataset"].score_answer(answer, item["entry"])


@pytest.mark.parametrize("item", ITEMS, ids=[f"{i['set']}-{n % 3}" for n, i in enumerate(ITEMS)])
def test_a_right_solution_scores_one_and_a_partial_one_gives_no_answer(item):
    adapter, entry = ADAPTERS[item["set"]], item["entry"]
    values = truth(item)
    assert {k.lower() for k in values} == {n.lower() for n in adapter.names(entry)}
    assert score(item, adapter.answer(entry, values)) == 1.0
    assert adapter.answer(entry, {k.upper(): v for k, v in values.items()}) == adapter.answer(entry, values)
    missing = dict(values)
    missing.pop(next(iter(missing)))
    assert adapter.answer(entry, missing) is None
    assert adapter.names(entry)[0] in adapter.hint(entry)


@pytest.mark.parametrize("item", ITEMS, ids=[f"{i['set']}-{n % 3}" for n, i in enumerate(ITEMS)])
def test_the_extraction_constraint_admits_the_right_answer(item):
    adapter, entry = ADAPTERS[item["set"]], item["entry"]
    constraint = adapter.extraction(entry)
    written = extracted(item)
    if isinstance(constraint, Choice):
        assert written in constraint.options
    else:
        assert re.fullmatch(constraint.pattern, written)
    assert score(item, adapter.finish(entry, written)) == 1.0


def extracted(item: dict) -> str:
    """What a right model writes under the extraction constraint."""
    if item["set"] == "futoshiki":
        return "\n".join(" ".join(map(str, row)) for row in item["entry"]["metadata"]["solution"])
    return item["entry"]["answer"]


def right_model(items: list[dict]):
    """Answers every request right: the extraction with the answer, a formulation with the answer's values."""
    def reply(request):
        text = request.prompt_text()
        item = next(i for i in items if i["entry"]["question"] in text)
        constraint = request.params.constraint
        if isinstance(constraint, Grammar):  # Formulate's formulation language
            return ["\n".join(f"{n} in {v}..{v}" for n, v in truth(item).items())] * request.params.n
        if isinstance(constraint, (Regex, Choice)):
            return extracted(item)
        return ["Step by step, the answer follows."] * request.params.n

    return FunctionBackend(reply)


def test_every_arm_runs_and_scores_a_right_model(tmp_path):
    items = reasoning.load(1, 100)
    args = argparse.Namespace(cot_tokens=64, formulate_tokens=512, formal_k=2, concurrency=8,
                              json=str(tmp_path / "r.json"))
    figures = {"model": "scripted", "n": 1, "seed": 100, "arms": {}, "skipped": []}
    anyio.run(reasoning.measure, right_model(items), items, list(reasoning.ARMS), args, figures)
    written = json.loads((tmp_path / "r.json").read_text())
    assert list(written["arms"]) == list(reasoning.ARMS) and written["skipped"] == []
    for arm, row in written["arms"].items():
        assert row["score"] == 1.0 and set(row["by_set"].values()) == {1.0}, arm
        assert row["tokens"] > 0 and row["wall_s"] >= 0
    assert written["arms"]["vote"]["tokens"] > written["arms"]["alone"]["tokens"]
    for arm in ("formulate", "formal_vote"):
        assert written["arms"][arm]["formulations"] == {"solved": len(items)}


def test_dump_records_every_formulation_reply_and_verdict(tmp_path):
    from _reasoning_dump import Recorder

    items = reasoning.load(1, 100)
    args = argparse.Namespace(cot_tokens=64, formulate_tokens=512, formal_k=2, concurrency=8, json=None)
    figures = {"model": "scripted", "n": 1, "seed": 100, "arms": {}, "skipped": []}
    dump = tmp_path / "dump.jsonl"
    anyio.run(reasoning.measure, Recorder(right_model(items), str(dump)), items, ["alone", "formulate"], args,
              figures)
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    requests = [r for r in lines if r["kind"] == "request"]
    verdicts = {r["set"]: r for r in lines if r["kind"] == "item"}
    assert len(requests) == len(items)  # formulation requests only: the chain-of-thought arm's are left out
    assert {re.match(r"\S+ in ", r["samples"][0]["text"]) is not None for r in requests} == {True}
    assert set(verdicts) == {i["set"] for i in items}
    for item in items:
        verdict = verdicts[item["set"]]
        assert verdict["status"] == "solved" and verdict["found"] is not None
        assert verdict["rounds"][0]["status"] == "solved" and verdict["wanted"] == item["entry"]["answer"]
