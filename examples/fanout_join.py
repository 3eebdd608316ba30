"""Fan-out and join: three independent analyses of one text run concurrently, then merge."""

import anyio

from plait import Graph, Request, RunContext, SamplingParams, ScriptedBackend

graph = Graph("fanout_join")


@graph.node
def clean(text: str) -> str:
    return " ".join(text.split())


@graph.node
def word_count(clean: str) -> int:
    return len(clean.split())


@graph.node
async def sentiment(clean: str, ctx: RunContext) -> str:
    prompt = f"Is this text positive or negative? Reply with one word.\nText: {clean}\nAnswer:"
    completion = await ctx.generate(Request(prompt=prompt, params=SamplingParams(max_tokens=4)))
    return completion.text.strip().lower()


@graph.node
def keywords(clean: str) -> list[str]:
    words = sorted({w.strip(".,!?").lower() for w in clean.split() if len(w) > 5})
    return words[:5]


@graph.node
def report(word_count: int, sentiment: str, keywords: list[str]) -> dict:
    return {"words": word_count, "sentiment": sentiment, "keywords": keywords}


graph.fan_out(clean, word_count, sentiment, keywords)
graph.join([word_count, sentiment, keywords], report)


def make_backend() -> ScriptedBackend:
    return ScriptedBackend({"positive or negative": " positive"})


async def main() -> None:
    text = "The  orchestration runtime finished every branch quickly, and the results were wonderful."
    result = await graph.run(text, backend=make_backend())
    print(result.output)


if __name__ == "__main__":
    anyio.run(main)
