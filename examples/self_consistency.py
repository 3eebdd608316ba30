"""Self-consistency: sample several chains of thought, vote on the final number, stop early when settled.

One request with n=4 draws the first wave of samples (one prefill). If three
of the four agree the vote stops there; otherwise a second wave is drawn.
Run it (scripted stand-in model, or a real one with --model):

    plait run examples/self_consistency.py:graph --input '{"question": "Ann has 17 boxes of 3 pens and 4 loose pens. How many pens?"}'
"""

import anyio

from plait import Graph, SamplingParams, ScriptedBackend
from plait.planners import ChainStep, EarlyStop, FanOut, NumberParser, VoteResult

solve = ChainStep(
    "Solve the problem step by step, then finish with 'The answer is N.'\nProblem: {question}\nSolution:",
    NumberParser(int, constrain=False),  # free-text reasoning; the last number is the answer
    sampling=SamplingParams(max_tokens=160, stop=("\nProblem:",)),
    name="solve",
)

graph = Graph("self_consistency", description="majority vote over sampled solutions, with early stop")
vote = graph.add(FanOut(solve, k=8, aggregate=EarlyStop(wave=4, confidence=0.75),
                        sampling=SamplingParams(temperature=0.8, max_tokens=160, stop=("\nProblem:",), seed=0),
                        name="vote"))


@graph.node
def report(vote: VoteResult) -> dict:
    """The winning answer and how the vote went."""
    return {"answer": vote.winner, "agreement": round(vote.agreement, 3), "votes": vote.distribution,
            "samples": vote.samples, "failed": vote.failed, "stopped_early": vote.stopped_early,
            "completion_tokens": vote.completion_tokens}


graph.edge(vote, report)

_SOLUTIONS = [
    "17 boxes of 3 pens is 51 pens. Adding 4 loose pens gives 55. The answer is 55.",
    "17 * 3 = 51, and 51 + 4 = 55. The answer is 55.",
    "17 * 3 = 41, plus 4 is 45. The answer is 45.",
    "Boxes hold 3 * 17 = 51 pens; with the 4 loose ones that is 55. The answer is 55.",
]


def make_backend() -> ScriptedBackend:
    """A stand-in model: each request with n samples gets n canned solutions (three of four say 55)."""
    return ScriptedBackend(lambda request: [_SOLUTIONS[i % len(_SOLUTIONS)] for i in range(request.params.n)])


async def main() -> None:
    question = "Ann has 17 boxes of 3 pens and 4 loose pens. How many pens?"
    result = await graph.run({"question": question}, backend=make_backend())
    print(result.output)


if __name__ == "__main__":
    anyio.run(main)
