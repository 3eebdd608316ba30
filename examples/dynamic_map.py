"""Dynamic fan-out: the number of branches is decided at run time (one per question in the input)."""

import anyio

from plait import Graph, Request, RunContext, SamplingParams, ScriptedBackend

graph = Graph("dynamic_map")


@graph.node
def split(questions: str) -> list[str]:
    return [q.strip() for q in questions.split(";") if q.strip()]


@graph.node(max_concurrency=4)
async def answer(question: str, ctx: RunContext) -> str:
    completion = await ctx.generate(Request(prompt=f"Q: {question}\nA:", params=SamplingParams(max_tokens=8)))
    return completion.text.strip()


@graph.node
def collect(split: list[str], answer: list[str]) -> dict[str, str]:
    return dict(zip(split, answer))


graph.map(split, answer, param="question")
graph.join([split, answer], collect)


def make_backend() -> ScriptedBackend:
    return ScriptedBackend(lambda request: " " + str(len(request.prompt_text())))


async def main() -> None:
    result = await graph.run("How long is this?; And this one?; Third", backend=make_backend())
    print(result.output)


if __name__ == "__main__":
    anyio.run(main)
