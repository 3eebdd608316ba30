"""A subtask tree: the model splits a multi-part question, solves the parts in parallel, keeps only conclusions.

Each part is solved in a context that extends the parent's (served from the
prefix cache); when a part finishes, its reasoning is pruned and only its
conclusion goes back to the parent. The output shows the context saved.

    plait run examples/subtask_tree.py:graph --input '{"task": "How many legs do 3 spiders and 2 ants have, and which has more legs in total?"}'
"""

import json

import anyio

from plait import Graph, SamplingParams, ScriptedBackend
from plait.planners import SubtaskTree, TreeResult, tree_script

graph = Graph("subtask_tree", description="decompose a multi-part question; prune finished parts to conclusions")
tree = graph.add(SubtaskTree(max_depth=2, max_breadth=3, subtree_budget=4000,
                             sampling=SamplingParams(max_tokens=200), name="tree"))


@graph.node
def report(tree: TreeResult) -> dict:
    """The answer, each part's conclusion, and the context figures with and without pruning."""
    stats = tree.stats
    return {"answer": tree.answer,
            "parts": {t.path: t.conclusion for t in tree.root.walk() if t.path},
            "calls": stats.calls,
            "peak_context_tokens": stats.peak_context_tokens,
            "unpruned_peak_context_tokens": stats.unpruned_peak_context_tokens,
            "cache_hit_rate": round(stats.cache_hit_rate, 3)}


graph.edge(tree, report)


def _reply(thought: str, answer: str | None = None, subtasks: list[str] | None = None) -> str:
    if subtasks is not None:
        return json.dumps({"thought": thought, "subtasks": [{"task": t} for t in subtasks]})
    return json.dumps({"thought": thought, "answer": answer})


def make_backend() -> ScriptedBackend:
    """A stand-in model that splits the question into spider legs and ant legs, then compares."""
    return ScriptedBackend(tree_script({
        "root": _reply("Three parts: spider legs, ant legs, then compare.",
                       subtasks=["How many legs do 3 spiders have?", "How many legs do 2 ants have?"]),
        "1": _reply("A spider has 8 legs, and 3 * 8 = 24.", "24"),
        "2": _reply("An ant is an insect with 6 legs; 2 * 6 = 12.", "12"),
        "root:conclude": _reply("24 + 12 = 36 legs; the spiders have more (24 > 12).",
                                "36 legs in total; the 3 spiders have more legs (24 vs 12)."),
    }))


async def main() -> None:
    task = "How many legs do 3 spiders and 2 ants have, and which has more legs in total?"
    result = await graph.run({"task": task}, backend=make_backend())
    print(result.output)


if __name__ == "__main__":
    anyio.run(main)
