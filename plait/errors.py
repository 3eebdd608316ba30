"""The plait exception tree.

Every error plait raises derives from :class:`PlaitError`, so one ``except``
catches them all. Messages say what went wrong and what to do about it.

::

    PlaitError
    ├── ConfigError                 a bad argument: a value, type or option plait cannot use (also a ValueError
    │                               and a TypeError, so older ``except ValueError`` code keeps working)
    ├── GraphError                  a graph is malformed (raised when it is built)
    │   ├── GraphValidationError    dangling, unreachable, unbounded cycles, type mismatches
    │   └── InputValidationError    run input that does not fit the entry nodes
    ├── RunError                    a run stopped early; carries ``.partial`` (a RunResult)
    │   ├── NodeFailedError         a node failed after its retries and its policy was "raise"
    │   ├── NodeTimeoutError        a node exceeded its timeout (also the cause inside NodeFailedError)
    │   ├── LoopLimitError          a bounded loop asked for more iterations than allowed
    │   ├── BudgetExceededError     the run's token budget is spent
    │   ├── DeadlineExceededError   the run's wall-clock deadline passed
    │   └── RunCancelledError       the run was cancelled from outside
    ├── BackendError                an LLM backend could not serve a request
    │   ├── ScriptExhaustedError    a ScriptedBackend ran out of replies
    │   ├── ModelError              a model is unknown, not pulled, or failed download/verification
    │   └── ReplayMissError         a replayed run asked for a response that was never recorded
    ├── ParseError                  model output could not be parsed into the expected type
    │   ├── ConstraintSyntaxError   constraint text outside the safe constraint language (plait.solvers)
    │   │   └── FormulationError    a formulation in the compact language is wrong; carries ``.line``, ``.column``
    │   └── PlanError               a plan stayed invalid after its repair rounds; carries ``.plan``, ``.problems``
    ├── ToolError                   a tool was declared or registered wrongly (bad hints, duplicate or unknown name)
    ├── VoteError                   a fan-out vote could not pick a winner (quorum not met, all samples failed)
    ├── SubtaskBudgetError          a subtask tree's subtree spent its token budget
    ├── CheckpointError             a checkpoint file is unreadable, corrupt, or not a plait checkpoint
    │   └── CheckpointMismatchError a checkpointed run belongs to another graph or another input
    └── ViewError                   what the viewer was given is not a trace, checkpoint or results file
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.orchestrator._record import RunResult

__all__ = [
    "PlaitError",
    "ConfigError",
    "GraphError",
    "GraphValidationError",
    "InputValidationError",
    "RunError",
    "NodeFailedError",
    "NodeTimeoutError",
    "LoopLimitError",
    "BudgetExceededError",
    "DeadlineExceededError",
    "RunCancelledError",
    "BackendError",
    "ScriptExhaustedError",
    "ModelError",
    "ParseError",
    "ConstraintSyntaxError",
    "FormulationError",
    "PlanError",
    "ToolError",
    "VoteError",
    "SubtaskBudgetError",
    "CheckpointError",
    "CheckpointMismatchError",
    "LeaseLostError",
    "ReplayMissError",
    "ViewError",
]


class PlaitError(Exception):
    """Root of every error raised by plait."""


class ConfigError(PlaitError, ValueError, TypeError):
    """An argument given to plait is invalid: a value out of range, a wrong type, an unknown option.

    It is also a ``ValueError`` and a ``TypeError``, so code written for the
    bare built-in errors plait used to raise keeps catching it.
    """


class GraphError(PlaitError):
    """A graph is malformed; raised while it is declared or validated."""


class GraphValidationError(GraphError):
    """Build-time validation failed. ``problems`` lists every problem found, each naming its nodes."""

    def __init__(self, graph: str, problems: list[str]):
        self.graph = graph
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"graph {graph!r} is invalid ({len(self.problems)} problem(s)):\n{lines}")


class InputValidationError(GraphError):
    """The input given to a run does not match what the graph's entry nodes accept."""


class RunError(PlaitError):
    """A run stopped before finishing. ``partial`` holds everything computed so far."""

    def __init__(self, message: str, partial: RunResult | None = None):
        super().__init__(message)
        self.partial = partial


class NodeFailedError(RunError):
    """A node raised (after its retries) and its ``on_error`` policy is ``"raise"``.

    ``cause`` is the node's own exception, also chained as ``__cause__`` so a
    traceback shows it. Branch on it: ``except NodeFailedError as err: if
    isinstance(err.cause, NodeTimeoutError): ...``.
    """

    def __init__(self, node: str, cause: BaseException, partial: RunResult | None = None):
        self.node = node
        self.cause = cause
        super().__init__(f"node {node!r} failed: {type(cause).__name__}: {cause}", partial)
        self.__cause__ = cause


class NodeTimeoutError(RunError):
    """A node attempt ran longer than its ``timeout``."""

    def __init__(self, node: str, timeout: float):
        self.node = node
        self.timeout = timeout
        super().__init__(f"node {node!r} timed out after {timeout:g}s")


class LoopLimitError(RunError):
    """A loop's source routed back once more after ``max_iterations`` loop-backs (the body ran that many + 1 times).

    ``exit`` names the loop's exit node, or is None when the loop has none.
    """

    def __init__(self, source: str, target: str, max_iterations: int, partial: RunResult | None = None,
                 exit: str | None = None):
        self.source, self.target, self.max_iterations, self.exit = source, target, max_iterations, exit
        fix = (f"raise max_iterations, or pass on_limit=\"exit\" to send the last value on to {exit!r}"
               if exit else "raise max_iterations, or give the loop an exit node (exit=...) with on_limit=\"exit\"")
        super().__init__(
            f"loop {source!r} -> {target!r} hit its limit of {max_iterations} loop-back(s) (the body ran "
            f"{max_iterations + 1} times) and {source!r} routed back again; {fix}",
            partial,
        )


class BudgetExceededError(RunError):
    """The run's token budget is spent, or a request's worst case (``needed``) no longer fits in it.

    No request that did not fit was sent.
    """

    def __init__(self, used: int, budget: int, node: str | None = None, partial: RunResult | None = None,
                 needed: int | None = None):
        self.used, self.budget, self.node, self.needed = used, budget, node, needed
        where = f" (stopped at node {node!r})" if node else ""
        if needed is None:
            message = f"token budget exceeded: {used} of {budget} tokens used{where}"
        else:
            message = (f"token budget exceeded: a request needs up to {needed} tokens (prompt + max_tokens * n) "
                       f"but {used} of {budget} are used{where}; raise token_budget or lower max_tokens")
        super().__init__(message, partial)


class DeadlineExceededError(RunError):
    """The run's wall-clock deadline passed."""

    def __init__(self, deadline: float, partial: RunResult | None = None):
        self.deadline = deadline
        super().__init__(f"run exceeded its deadline of {deadline:g}s", partial)


class RunCancelledError(RunError):
    """The run was cancelled from outside (``Run.cancel()``)."""


class BackendError(PlaitError):
    """An LLM backend could not serve a request (bad request, server down, engine failure)."""


class ScriptExhaustedError(BackendError):
    """A :class:`~plait.ScriptedBackend` was asked for more replies than it was given."""


class ModelError(BackendError):
    """A model name is unknown, a model is not pulled yet, or a download failed its checksum."""


class ReplayMissError(BackendError):
    """A run replayed from a checkpoint asked for an LLM response or tool result that was not recorded."""


class ParseError(PlaitError):
    """Model output could not be parsed. ``raw`` holds the text that failed.

    ``attempts`` holds the text of every reply tried, in order, when the model
    was re-asked (empty otherwise).
    """

    def __init__(self, message: str, raw: str = "", attempts: list[str] | None = None):
        super().__init__(message)
        self.raw = raw
        self.attempts = list(attempts or ())


class ConstraintSyntaxError(ParseError):
    """Constraint text is not in the safe constraint language (or names an undeclared variable).

    The message names the construct that is not allowed; ``raw`` holds the text.
    """


class FormulationError(ConstraintSyntaxError):
    """A formulation in the compact language (:func:`plait.solvers.parse_formulation`) cannot become a CSP.

    ``line`` and ``column`` (both from 1) locate the culprit; the message starts with them, quotes the
    statement and says what to write instead. ``raw`` holds the whole text.
    """

    def __init__(self, message: str, raw: str = "", line: int = 0, column: int = 0):
        super().__init__(message, raw)
        self.line = line
        self.column = column


class PlanError(ParseError):
    """The planner produced no valid plan within its repair rounds.

    ``problems`` lists what was wrong with the last plan, ``plan`` is that plan
    (None when it could not even be parsed) and ``raw`` the model's last text.
    """

    def __init__(self, message: str, problems: list[str], plan: Any = None, raw: str = ""):
        self.problems = list(problems)
        self.plan = plan
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{message}:\n{lines}" if lines else message, raw)


class ToolError(PlaitError):
    """A tool was declared or registered wrongly. (A tool that fails while running becomes a ToolFailure value.)"""


class VoteError(PlaitError):
    """A vote could not pick a winner. ``result`` (a VoteResult) keeps every sample drawn and why each failed."""

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


class SubtaskBudgetError(PlaitError):
    """A subtree of a SubtaskTree spent its token budget.

    ``partial`` holds the task record so far; ``owner`` is the spent budget
    (the subtree whose limit was reached, which may enclose the one that ran).
    """

    def __init__(self, task: str, used: int, budget: int, partial: Any = None, owner: Any = None):
        self.task, self.used, self.budget, self.partial, self.owner = task, used, budget, partial, owner
        super().__init__(f"subtask {task!r} used {used} of its {budget}-token subtree budget; raise "
                         "subtree_budget, lower max_tokens, or use on_budget='conclude' to keep partial work")


class CheckpointError(PlaitError):
    """A checkpoint cannot be used: unreadable, corrupt, truncated, closed, or not a plait checkpoint.

    The file is never modified when this is raised.
    """


class LeaseLostError(CheckpointError):
    """A batch worker stalled past its lease on an input and another worker took it over: this worker's
    writes for that input are refused (the input is finished by the other worker)."""


class CheckpointMismatchError(CheckpointError):
    """A run id in the checkpoint was recorded for a different graph (nodes, edges or types) or input."""


class ViewError(PlaitError, ValueError):
    """``plait view`` / ``write_view`` cannot read its source: missing, not a trace, checkpoint or results file,
    or without the run id asked for."""
