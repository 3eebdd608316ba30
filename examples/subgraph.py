"""Subgraphs: a small "answer and grade" graph used as a single node, twice, inside a larger graph."""

import anyio

from plait import Graph, Request, RunContext, SamplingParams, ScriptedBackend


def answer_and_grade(name: str) -> Graph:
    sub = Graph(name)

    @sub.node
    async def answer(question: str, ctx: RunContext) -> str:
        completion = await ctx.generate(Request(prompt=f"Q: {question}\nA:", params=SamplingParams(max_tokens=16)))
        return completion.text.strip()

    @sub.node
    def grade(answer: str) -> dict:
        return {"answer": answer, "confident": not answer.lower().startswith("maybe")}

    sub.edge(answer, grade)
    return sub


graph = Graph("subgraph")


@graph.node
def split(pair: str) -> dict:
    first, _, second = pair.partition("|")
    return {"first": first.strip(), "second": second.strip()}


@graph.node
def first_q(split: dict) -> str:
    return split["first"]


@graph.node
def second_q(split: dict) -> str:
    return split["second"]


left = graph.add(answer_and_grade("left"))
right = graph.add(answer_and_grade("right"))


@graph.node
def combine(left: dict, right: dict) -> dict:
    return {"left": left, "right": right}


graph.fan_out(split, first_q, second_q)
graph.edge(first_q, left, param="question").edge(second_q, right, param="question")
graph.join([left, right], combine)


def make_backend() -> ScriptedBackend:
    return ScriptedBackend({"Q: 2+2": " 4", "Q: Who wrote Hamlet": " maybe Shakespeare"})


async def main() -> None:
    result = await graph.run("2+2 | Who wrote Hamlet", backend=make_backend())
    print(result.output)


if __name__ == "__main__":
    anyio.run(main)
