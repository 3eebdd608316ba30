"""The run viewer's reasoning panels: votes, subtask trees, plans, solver work.

:func:`reasoning_panels` takes a run's events as the dicts of its JSONL trace
(:func:`plait.read_trace`) and returns an HTML fragment: sections of markup
and inline SVG, no script (what opens and closes is a ``<details>``). Every
value from the run is clipped and escaped, so a model answer holding
``</script><img onerror=...>`` renders as text. One pass sorts the events;
each panel appears only when the run has its events:

* votes: :class:`~plait.VoteTallied` (FanOut, EarlyStop, Quorum...);
* subtask trees: :class:`~plait.SubtaskTreeSolved`;
* plans: ``plan`` / ``plan_step_finished`` / ``replan`` / ``answer`` ``Custom`` events;
* solver work: :class:`~plait.FormulationChecked`, ``retraction`` and
  ``csp_solved`` ``Custom`` events, :class:`~plait.ProposalSettled`.
"""

from __future__ import annotations

from typing import Any

from plait.viewer._reasoning_plans import plans_panel
from plait.viewer._reasoning_solver import solver_panel
from plait.viewer._reasoning_trees import trees_panel
from plait.viewer._reasoning_votes import votes_panel

__all__ = ["reasoning_panels", "REASONING_CSS"]

_PLAN_EVENTS = {"plan", "plan_step_finished", "replan", "answer"}

REASONING_CSS = """
.plait-reasoning h3 { font-size: 14px; margin: 10px 0 4px; }
.plait-reasoning h4 { margin: .8em 0 .3em; }
.plait-reasoning svg text { font: 12px system-ui, sans-serif; fill: #222; }
.plait-vote, .plait-tree-card, .plait-plan-node, .plait-formulate, .plait-propose
  { border: 1px solid #ddd; border-radius: 6px; padding: .4em .8em; margin: .6em 0; overflow-x: auto; }
.plait-vote-bar { fill: #9bb7d4; } .plait-vote-bar.plait-winner { fill: #2e7d32; }
.plait-sample.plait-winner { fill: #2e7d32; } .plait-sample.plait-other { fill: #9bb7d4; }
.plait-sample.plait-failed { fill: #c62828; } .plait-sample.plait-undrawn { fill: none; stroke: #999; }
.plait-settled { stroke: #e65100; stroke-width: 3; } .plait-vote-samples { vertical-align: middle; }
.plait-no-winner, .plait-step-failed td:last-child b { color: #c62828; }
.plait-peak-pruned { fill: #2e7d32; } .plait-peak-unpruned { fill: #bbb; }
.plait-tree, .plait-tree ul { list-style: none; padding-left: 1.2em; border-left: 1px dotted #aaa; }
.plait-task { margin: .2em 0; } .plait-conclusion { color: #2e7d32; } .plait-none { color: #999; }
.plait-plan-edge { stroke: #777; stroke-width: 1.5; }
.plait-plan-step rect { fill: #e3f2e3; stroke: #2e7d32; }
.plait-step-failed rect { fill: #fde0e0; stroke: #c62828; } .plait-step-notrun rect { fill: #eee; stroke: #999; }
.plait-reasoning table { border-collapse: collapse; margin: .4em 0; }
.plait-reasoning td, .plait-reasoning th { border: 1px solid #ddd; padding: 2px 6px; vertical-align: top; }
.plait-step-failed { background: #fff3f3; } .plait-retraction td { background: #fff8e1; }
.plait-finding { white-space: pre-wrap; margin: .2em 0; max-width: 60em; }
"""


def reasoning_panels(events: list[dict[str, Any]]) -> str:
    """The reasoning panels of one run as an HTML fragment ("" when the run has no reasoning events)."""
    votes: list[dict[str, Any]] = []
    trees: list[dict[str, Any]] = []
    formulations: list[dict[str, Any]] = []
    settled: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    retractions: list[dict[str, Any]] = []
    solved: list[dict[str, Any]] = []
    typed = {"vote_tallied": votes, "subtask_tree_solved": trees, "formulation_checked": formulations,
             "proposal_settled": settled}
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("kind")
        if kind == "custom":
            name = event.get("name")
            if name in _PLAN_EVENTS:
                plans.append(event)
            elif name == "retraction":
                retractions.append(event)
            elif name == "csp_solved":
                solved.append(event)
        elif isinstance(kind, str) and kind in typed:
            typed[kind].append(event)
    sections = []
    if votes:
        sections.append(votes_panel(votes))
    if trees:
        sections.append(trees_panel(trees))
    if any(e.get("name") == "plan" for e in plans):
        sections.append(plans_panel(plans))
    if formulations or retractions or settled or solved:
        sections.append(solver_panel(formulations, retractions, settled, solved))
    if not sections:
        return ""
    return (f"<div class='plait-reasoning'><style>{REASONING_CSS}</style><h2>Reasoning</h2>"
            f"{''.join(sections)}</div>")
