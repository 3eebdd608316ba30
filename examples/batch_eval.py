"""A durable evaluation: grade a model's arithmetic over a data set, resumably.

Each line of ``examples/data/arithmetic.jsonl`` is one input. The graph asks
the model, computes the exact answer, and grades. With ``--checkpoint``, every
finished node and every model response is committed to an SQLite file, so a
killed batch resumes where it stopped and a finished one can be replayed with
no model:

    plait run examples/batch_eval.py:graph --inputs examples/data/arithmetic.jsonl \\
        --id-field id --output results.jsonl --checkpoint runs.db --concurrency 8
    plait run examples/batch_eval.py:graph --input '{"question": "What is 6 * 7?"}' \\
        --checkpoint runs.db --run-id one
    plait run examples/batch_eval.py:graph --checkpoint runs.db --run-id one --replay

Without ``--model`` it uses a scripted stand-in that is wrong on every fifth question.
"""

import json
import re
import tempfile
from pathlib import Path

from plait import Graph, Request, RunContext, SamplingParams, ScriptedBackend, run_batch_sync

DATA = Path(__file__).with_name("data") / "arithmetic.jsonl"
graph = Graph("batch_eval", description="grade a model's arithmetic, one question per input")


@graph.node
async def ask(question: str, ctx: RunContext) -> str:
    """The model's answer, as text."""
    prompt = f"Answer with just the number.\nQuestion: {question}\nAnswer:"
    completion = await ctx.generate(Request(prompt=prompt, params=SamplingParams(max_tokens=8, stop=("\n",))))
    return completion.text.strip()


@graph.node
def exact(question: str) -> int:
    """The right answer, computed."""
    a, op, b = re.search(r"(\d+) ([-+*]) (\d+)", question).groups()
    return {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]


@graph.node
def grade(ask: str, exact: int) -> dict:
    """Join: the model's number against the exact one."""
    found = re.search(r"-?\d+", ask)
    answer = int(found.group()) if found else None
    return {"answer": answer, "expected": exact, "correct": answer == exact}


graph.edge(ask, grade).edge(exact, grade)


def _stand_in(request: Request) -> str:
    a, op, b = re.search(r"(\d+) ([-+*]) (\d+)", request.prompt_text()).groups()
    value = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
    return str(value + 1 if int(a) % 5 == 0 else value)


def make_backend() -> ScriptedBackend:
    return ScriptedBackend(_stand_in)


def main() -> None:  # a script: the synchronous entry point (in async code: await run_batch(...))
    inputs = [json.loads(line) for line in DATA.read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        db, out = Path(tmp) / "runs.db", Path(tmp) / "results.jsonl"
        first = run_batch_sync(graph, inputs, backend=make_backend(), concurrency=8, checkpoint=db,
                               batch_id="arith", output=out, id_field="id")
        again = run_batch_sync(graph, inputs, backend=make_backend(), concurrency=8, checkpoint=db,
                               batch_id="arith", output=out, id_field="id")
        assert again.resumed == len(inputs)  # everything was already done: nothing ran twice
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    correct = sum(row["output"]["correct"] for row in rows)
    print(first.summary())
    print(f"accuracy {correct}/{len(rows)}; second pass reused {again.resumed} finished inputs")


if __name__ == "__main__":
    main()
