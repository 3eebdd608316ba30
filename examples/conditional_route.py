"""Conditional routing: a classifier picks which branch handles the question; a join formats either result."""

import anyio

from plait import Graph, Route

graph = Graph("conditional_route")


@graph.node
def classify(question: str) -> Route[str]:
    """Send arithmetic to the calculator and everything else to the lookup table."""
    is_math = any(ch.isdigit() for ch in question)
    return Route(calculate if is_math else lookup, question)


@graph.node
def calculate(question: str) -> str:
    numbers = [int(tok) for tok in question.replace("?", " ").split() if tok.isdigit()]
    return f"the sum is {sum(numbers)}"


@graph.node
def lookup(question: str) -> str:
    facts = {"capital of france": "Paris", "largest planet": "Jupiter"}
    for key, answer in facts.items():
        if key in question.lower():
            return answer
    return "unknown"


@graph.node
def answer(result: str) -> str:
    return f"Answer: {result}"


graph.route(classify, [calculate, lookup])
graph.edge(calculate, answer, param="result")
graph.edge(lookup, answer, param="result")


async def main() -> None:
    for question in ("What is 2 plus 40?", "What is the capital of France?"):
        result = await graph.run(question)
        print(question, "->", result.output)


if __name__ == "__main__":
    anyio.run(main)
