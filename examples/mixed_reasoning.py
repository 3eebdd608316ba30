"""One graph mixing the three strategies: a chain step, a fan-out vote and a subtask tree.

The chain step lists the facts of a word problem; a subtask tree solves the
problem from those facts by decomposition, while a fan-out vote solves it
directly by self-consistency; a final node checks that the two agree.

    plait run examples/mixed_reasoning.py:graph --input '{"problem": "A shop sells 4 crates of 12 eggs and then 7 more eggs. 5 eggs break. How many good eggs were sold?"}'
"""

import json
import re

import anyio

from plait import Graph, SamplingParams, ScriptedBackend
from plait.planners import ChainStep, EarlyStop, FanOut, NumberParser, SubtaskTree, tree_script

graph = Graph("mixed_reasoning", description="chain -> subtask tree, and a vote, reconciled")

facts = graph.add(ChainStep("List the quantities in this problem, one per line.\nProblem: {problem}\nQuantities:",
                            sampling=SamplingParams(max_tokens=80), name="facts"))


@graph.node
def frame(problem: str, facts: str) -> str:
    """The task for the subtask tree: the problem plus the extracted facts."""
    return f"{problem} Known quantities: {' ; '.join(line.strip() for line in facts.splitlines() if line.strip())}"


tree = graph.add(SubtaskTree(max_depth=1, max_breadth=3, answer_only=True, sampling=SamplingParams(max_tokens=160),
                             name="tree"))
direct = ChainStep("Solve step by step and end with 'The answer is N.'\nProblem: {problem}\nSolution:",
                   NumberParser(int, constrain=False), sampling=SamplingParams(max_tokens=120), name="direct")
vote = graph.add(FanOut(direct, k=6, aggregate=EarlyStop(wave=3, confidence=1.0), winner_only=True, name="vote",
                        sampling=SamplingParams(temperature=0.8, max_tokens=120, seed=0)))


@graph.node
def reconcile(tree: str, vote: int) -> dict:
    """Compare the decomposed answer with the voted one."""
    numbers = re.findall(r"-?\d+", tree)
    tree_value = int(numbers[-1]) if numbers else None
    return {"tree_answer": tree, "vote_answer": vote, "agree": tree_value == vote}


graph.chain(facts, frame)
graph.edge(frame, tree, param="task")
graph.join({"tree": tree, "vote": vote}, reconcile)


def _reply(thought: str, answer: str | None = None, subtasks: list[str] | None = None) -> str:
    if subtasks is not None:
        return json.dumps({"thought": thought, "subtasks": [{"task": t} for t in subtasks]})
    return json.dumps({"thought": thought, "answer": answer})


_TREE = tree_script({
    "root": _reply("Count eggs sold, then remove the broken ones.",
                   subtasks=["How many eggs are in 4 crates of 12 plus 7?", "Subtract the 5 broken eggs."]),
    "1": _reply("4 * 12 = 48, 48 + 7 = 55.", "55"),
    "2": _reply("Eggs sold were 55 per the first part, minus 5 broken.", "50"),
    "root:conclude": _reply("55 sold, 5 broke.", "50"),
})


def _scripted(request):
    text = request.prompt_text()
    if "Task:" in text:
        return _TREE(request)
    if text.startswith("List the quantities"):
        return "4 crates\n12 eggs per crate\n7 more eggs\n5 broken eggs"
    return ["4 * 12 + 7 = 55 eggs, 55 - 5 = 50. The answer is 50."] * request.params.n


def make_backend() -> ScriptedBackend:
    """A stand-in model for the three kinds of calls (facts, tree, vote samples)."""
    return ScriptedBackend(_scripted)


async def main() -> None:
    problem = "A shop sells 4 crates of 12 eggs and then 7 more eggs. 5 eggs break. How many good eggs were sold?"
    result = await graph.run({"problem": problem}, backend=make_backend())
    print(result.output)


if __name__ == "__main__":
    anyio.run(main)
