"""Meeting scheduling from natural language: the model proposes, the solver disposes.

``Formulate`` turns the request into a CSP (any solution will do). Then
``ProposeAndRetract`` asks the model for a schedule, retracts exactly the
meetings involved in broken constraints (each retraction is a ``retraction``
event in the run record), keeps the rest, and re-asks only for the retracted
ones; the solver completes whatever is still open. ``make_backend()`` is a
scripted stand-in model whose first schedule double-books Cid. Run it:

    plait run examples/meetings.py:graph --input '{"problem": "<the request, e.g. meetings.REQUEST>"}' --summary
"""

import json

import anyio

from plait import CSP, Formulate, Graph, ProposeAndRetract, ScriptedBackend
from plait.solvers import Formulation, Proposal, format_formulation

REQUEST = """\
Schedule four one-hour meetings tomorrow; each starts on the hour, between 9:00 and 16:00.
Planning (Ann, Bob), Design review (Bob, Cid), Hiring (Ann, Dee), Retro (Ann, Cid, Dee).
Nobody can be in two meetings at once. Ann arrives at 10:00. Cid leaves at 13:00.
Hiring must be in the afternoon (13:00 or later). Planning must come before the design review."""

MEETINGS = {"Planning": ["Ann", "Bob"], "Design": ["Bob", "Cid"], "Hiring": ["Ann", "Dee"],
            "Retro": ["Ann", "Cid", "Dee"]}


def meetings_model() -> dict:
    """The CSP as the model writes it: a start hour per meeting."""
    names = list(MEETINGS)
    clash = [f"{a} != {b}" for i, a in enumerate(names) for b in names[i + 1:]
             if set(MEETINGS[a]) & set(MEETINGS[b])]
    ann = [f"{m} >= 10" for m in names if "Ann" in MEETINGS[m]]
    cid = [f"{m} + 1 <= 13" for m in names if "Cid" in MEETINGS[m]]
    return {"variables": [{"name": m, "domain": {"min": 9, "max": 16}} for m in names],
            "constraints": [{"kind": "expression", "expression": c} for c in clash + ann + cid]
            + [{"kind": "compare", "left": "Hiring", "op": ">=", "right": "13"},
               {"kind": "compare", "left": "Planning", "op": "<", "right": "Design"}]}


graph = Graph("meetings", description="NL request -> CSP -> model proposes a schedule, solver retracts conflicts")
formulate = graph.add(Formulate(expect_unique=False))
propose = graph.add(ProposeAndRetract(max_rounds=3))


@graph.node
def constraints(formulate: Formulation) -> CSP:
    """The formulated CSP (a formulation that never became valid stops the run here, with its feedback)."""
    if formulate.csp is None or formulate.status != "solved":
        raise ValueError(f"could not formulate the request ({formulate.status}): {formulate.feedback[-1:]}")
    return formulate.csp


@graph.node
def schedule(propose_and_retract: Proposal) -> dict:
    """Start times, who chose them (model or solver), and the retractions on the way."""
    solution = propose_and_retract.solution or {}
    return {"status": propose_and_retract.result.status,
            "schedule": {m: f"{h}:00" for m, h in solution.items()},
            "from_model": sorted(propose_and_retract.from_model), "from_solver": propose_and_retract.from_solver,
            "retractions": [r.variables for r in propose_and_retract.retractions]}


graph.chain(formulate, constraints)
graph.edge(constraints, propose, param="csp")
graph.chain(propose, schedule)


def make_backend() -> ScriptedBackend:
    """A scripted model: formulates correctly, then proposes a schedule that puts Cid in two places at 11:00."""
    return ScriptedBackend([
        format_formulation(CSP.model_validate(meetings_model())),  # the formulation language, as the model writes it
        json.dumps({"Planning": 10, "Design": 11, "Hiring": 14, "Retro": 11}),
        json.dumps({"Design": 12, "Retro": 11}),
    ])


async def main() -> None:
    result = await graph.run({"problem": REQUEST}, backend=make_backend())
    print(json.dumps(result.output, indent=1))


if __name__ == "__main__":
    anyio.run(main)
