"""Quickstart: ask a model an arithmetic question and check it against exact arithmetic.

Two branches run concurrently from the question: the model's answer and an
exact computation. A join compares them. Run it:

    plait run examples/quickstart.py:graph --input '{"question": "What is 17 * 3 + 4?"}'
"""

import ast
import operator
import re

import anyio

from plait import Graph, Request, RunContext, SamplingParams, ScriptedBackend

graph = Graph("quickstart", description="model answer checked against exact arithmetic")

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


def _evaluate(node: ast.AST) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"unsupported arithmetic: {ast.dump(node)}")


@graph.node
def exact(question: str) -> int:
    """Evaluate the arithmetic expression inside the question (integers, + - * //)."""
    match = re.search(r"[\d\s+\-*/()]+\d", question)
    if not match:
        raise ValueError(f"no arithmetic expression in {question!r}")
    return _evaluate(ast.parse(match.group().strip(), mode="eval").body)


@graph.node
async def ask_model(question: str, ctx: RunContext) -> str:
    """One LLM call: the model's own answer."""
    prompt = f"Answer with just the number.\nQuestion: {question}\nAnswer:"
    completion = await ctx.generate(Request(prompt=prompt, params=SamplingParams(max_tokens=8, stop=("\n",))))
    return completion.text.strip()


@graph.node
def compare(ask_model: str, exact: int) -> dict:
    """Join: does the model agree with exact arithmetic?"""
    digits = re.search(r"-?\d+", ask_model)
    model_value = int(digits.group()) if digits else None
    return {"model_answer": ask_model, "exact": exact, "agrees": model_value == exact}


graph.join([ask_model, exact], compare)


def make_backend() -> ScriptedBackend:
    """A stand-in model for running without one (the CLI uses it when no --model is given)."""
    return ScriptedBackend({"17 * 3 + 4": " 55", "": " 42"})


async def main() -> None:
    result = await graph.run({"question": "What is 17 * 3 + 4?"}, backend=make_backend())
    print(result.output)
    print(result.summary())


if __name__ == "__main__":
    anyio.run(main)
