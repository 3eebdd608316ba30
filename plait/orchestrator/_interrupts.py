"""Human-in-the-loop interrupts: a node asks a question, the run stops, a later run with the answer continues.

``answer = await ctx.interrupt(question)`` looks for a recorded answer (a
:meth:`~plait.orchestrator._journal.Journal.remember` record of kind
``"interrupt"``); failing that, for one given to this run as ``resume=``;
failing that, it raises :class:`_Interrupted`, which the runtime turns into a
node with status ``"interrupted"`` and a pending entry ``{id, node, question}``
in ``RunResult.interrupts``. An answer taken from ``resume=`` is recorded
through the journal before the node goes on, so a crash later in the resumed
run, a second resume and a replay all see it and never ask again.

An interrupt's id is ``"<activation>#<k>.<i>"``: the node's full name, ``k``
its activation in the run (loops), ``i`` the interrupt's index within that
activation. It depends only on where the question is asked, so answers can be
given in any order and over several resumes.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from plait.errors import ConfigError
from plait.orchestrator._types import type_name

if TYPE_CHECKING:
    from plait.orchestrator._context import RunContext

__all__ = ["check_answers", "interrupt"]


class _Interrupted(BaseException):
    """Internal: ends a node waiting for an answer (a BaseException, so ``except Exception`` in a node cannot eat it).

    ``pending`` is the interrupt to list, or None when a subgraph's nodes already listed theirs.
    """

    def __init__(self, pending: dict[str, Any] | None):
        super().__init__(pending)
        self.pending = pending


def check_answers(resume: Any, checkpoint: Any, run_id: str | None, nodes: Collection[str]) -> dict[str, Any]:
    """``Run(resume=...)`` checked: a dict from interrupt id to answer, for a recorded run of a graph with
    top-level ``nodes``; an id that no node of the graph could ask (a typo) is refused before anything runs."""
    if resume is None:
        return {}
    if not isinstance(resume, dict) or not all(isinstance(k, str) for k in resume):
        raise ConfigError(f"resume= must be a dict from interrupt id (str) to answer, got {type(resume).__name__}")
    if checkpoint is None or run_id is None:
        raise ConfigError("resume= needs checkpoint= and run_id= of the interrupted run "
                          "(its answers are recorded there)")
    for interrupt_id in resume:
        activation, _, position = interrupt_id.rpartition("#")
        node = activation.split("/", 1)[0].split("[", 1)[0]
        k, _, i = position.partition(".")
        if node not in nodes or not (k.isdigit() and i.isdigit()):
            raise ConfigError(f"resume= answers interrupt {interrupt_id[:120]!r}, which no node of this graph can "
                              "ask (an id is 'NODE#ACTIVATION.INDEX'); copy the ids from the interrupted run's "
                              "result.interrupts (or `plait run`'s output)")
    return dict(resume)


async def interrupt(ctx: RunContext, question: Any, returns: Any = Any) -> Any:
    """The answer to ``question`` (see the module docstring); ``returns`` is the answer's type."""
    state = ctx._state
    journal = state.journal
    if journal.run_id is None:
        raise RuntimeError(f"node {ctx.node!r} called ctx.interrupt(), which needs a checkpoint to stop and resume "
                           "the run; pass checkpoint= to the run")
    index = ctx._interrupts
    ctx._interrupts += 1
    interrupt_id = f"{ctx.node}#{ctx._activation}.{index}"

    async def answer() -> Any:
        if interrupt_id not in state.answers:
            raise _Interrupted({"id": interrupt_id, "node": ctx.node, "question": question})
        given = state.answers[interrupt_id]
        if returns is Any:
            return given
        try:
            return TypeAdapter(returns).validate_python(given)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"the answer to interrupt {interrupt_id!r} is not a valid {type_name(returns)}: "
                             f"{first.get('msg')}; resume with an answer of that type") from None

    return await journal.remember("interrupt", interrupt_id, answer, returns)
