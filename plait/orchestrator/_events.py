"""Typed events emitted while a graph runs.

Every event carries the run id and ``t``, seconds since the run started.
Nodes inside a subgraph are named ``parent/child``; mapped activations
``node[i]``. Events are cheap frozen dataclasses; ``to_dict()`` gives a
JSON-ready dict (used by the JSONL trace).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar, dataclass_transform

from pydantic_core import to_jsonable_python

_E = TypeVar("_E")

__all__ = [
    "Event",
    "RunStarted",
    "RunFinished",
    "NodeStarted",
    "NodeFinished",
    "NodeFailed",
    "NodeRetried",
    "NodeSkipped",
    "NodeCancelled",
    "TokensUsed",
    "LoopIteration",
    "ThreadAbandoned",
    "Custom",
    "VoteTallied",
    "SubtaskTreeSolved",
    "FormulationChecked",
    "ProposalSettled",
]


@dataclass_transform(frozen_default=True, kw_only_default=True)
def _event(cls: type[_E]) -> type[_E]:
    """Events are frozen, slotted, keyword-only dataclasses."""
    return dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)


@_event
class Event:
    kind: ClassVar[str] = "event"
    run_id: str
    t: float

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind}
        for field in dataclasses.fields(self):
            data[field.name] = to_jsonable_python(getattr(self, field.name), fallback=repr)
        return data


@_event
class RunStarted(Event):
    """``inputs``: the run's input by parameter; ``shape``: the graph's nodes and edges (see ``graph_shape``),
    so that a trace alone can be drawn (``plait view``)."""

    kind: ClassVar[str] = "run_started"
    graph: str
    started_at: float  # wall-clock epoch seconds
    inputs: Any = None
    shape: Any = None


@_event
class RunFinished(Event):
    """The last event of every run. ``status``: ok, partial, failed, cancelled."""

    kind: ClassVar[str] = "run_finished"
    status: str
    duration: float
    tokens: int
    error: str | None = None


@_event
class NodeStarted(Event):
    """``inputs``: the activation's arguments by parameter (on the first attempt; retries take the same)."""

    kind: ClassVar[str] = "node_started"
    node: str
    attempt: int = 1
    inputs: Any = None


@_event
class NodeFinished(Event):
    kind: ClassVar[str] = "node_finished"
    node: str
    duration: float
    output: Any = None
    route: str | None = None
    restored: bool = False  # taken from a checkpoint, not run


@_event
class NodeFailed(Event):
    kind: ClassVar[str] = "node_failed"
    node: str
    error: str
    attempt: int = 1
    error_type: str | None = None  # the exception's class name, e.g. "NodeTimeoutError"


@_event
class NodeRetried(Event):
    kind: ClassVar[str] = "node_retried"
    node: str
    attempt: int
    delay: float
    error: str


@_event
class NodeSkipped(Event):
    kind: ClassVar[str] = "node_skipped"
    node: str
    reason: str


@_event
class NodeCancelled(Event):
    kind: ClassVar[str] = "node_cancelled"
    node: str


@_event
class TokensUsed(Event):
    kind: ClassVar[str] = "tokens_used"
    node: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    run_total: int
    model: str = ""  # the model that answered, when the backend says
    model_name: str = "default"  # the run's name for the backend asked (backends=), "default" for backend=


@_event
class LoopIteration(Event):
    kind: ClassVar[str] = "loop_iteration"
    source: str
    target: str
    iteration: int


@_event
class ThreadAbandoned(Event):
    """A sync node's worker thread runs on after its attempt timed out or was cancelled (threads cannot be
    killed); its result will be dropped. ``running``: abandoned threads still running in the process."""

    kind: ClassVar[str] = "thread_abandoned"
    node: str
    running: int


@_event
class Custom(Event):
    """Emitted by nodes through ``ctx.emit(name, **data)``: votes, retractions, plan steps..."""

    kind: ClassVar[str] = "custom"
    node: str
    name: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


# -- what reasoning nodes decided (read by the run viewer's panels) ------------------------------------------------


@_event
class VoteTallied(Event):
    """A fan-out's vote, emitted once per vote (also when too few samples succeeded: then ``winner`` is None).

    ``answers``: each finished sample's answer key in sample order, None for a
    failed one; ``truncated`` of the failed were cut off at ``max_tokens``;
    ``cancelled`` were started and then dropped by an early stop. ``wave`` is
    the aggregator's wave size (None: all k at once), so ``len(answers) < k``
    with ``stopped_early`` shows where the vote was settled.
    """

    kind: ClassVar[str] = "vote_tallied"
    node: str
    k: int
    aggregator: str
    wave: int | None
    quorum: int
    winner: str | None
    distribution: dict[str, float]
    agreement: float
    answers: list[str | None]
    failed: int
    truncated: int
    cancelled: int
    stopped_early: bool
    errors: list[str]
    tokens: int


@_event
class SubtaskTreeSolved(Event):
    """A subtask tree's final state: ``tree`` is the root task record (task, thoughts, conclusion, status,
    calls, tokens, subtasks...) as JSON data, ``stats`` its context figures with and without pruning."""

    kind: ClassVar[str] = "subtask_tree_solved"
    node: str
    tree: dict[str, Any]
    stats: dict[str, Any]


@_event
class FormulationChecked(Event):
    """One round of ``Formulate``: the model's CSP (None when it did not parse), the solver's verdict
    (``status``; ``repeat`` when the reply repeated an earlier one and was re-sampled), its finding sent back to
    the model (None when accepted), and up to two solutions. ``sample`` is which of the k formulations of a
    ``Formulate(k=...)`` vote the round belongs to (0 without a vote)."""

    kind: ClassVar[str] = "formulation_checked"
    node: str
    round: int
    status: str
    finding: str | None
    csp: dict[str, Any] | None
    solutions: list[dict[str, Any]]
    count: int
    sample: int = 0


@_event
class ProposalSettled(Event):
    """How ``ProposeAndRetract`` ended: the values the model supplied (kept), the variables the solver
    filled in, the solver's status and solution, after ``rounds`` rounds (retractions are ``retraction``
    ``Custom`` events)."""

    kind: ClassVar[str] = "proposal_settled"
    node: str
    rounds: int
    from_model: dict[str, Any]
    from_solver: list[str]
    status: str
    solution: dict[str, Any] | None
