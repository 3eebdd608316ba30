"""plait: reasoning orchestration with hybrid control flow.

Declare reasoning graphs in Python (chains, fan-outs with votes, subtask trees,
plan-then-execute tool calls, CSP solvers) and run them on one async dataflow
runtime over an LLM backend (vLLM in process or over HTTP, or the scripted
test doubles).

The top level holds what a graph's author reaches for; the rest lives in the
packages, each with its own ``__all__``: :mod:`plait.orchestrator` (events,
trace sinks, node internals), :mod:`plait.executors` (constraints, tools, the
model registry), :mod:`plait.planners` (parsers, aggregators, plans),
:mod:`plait.solvers` (constraint kinds, the expression language),
:mod:`plait.durable` (batch records) and :mod:`plait.errors` (the whole tree).
"""

from plait import errors
from plait._deprecation import moved_names as _moved_names
from plait.durable import (
    Checkpointer,
    MemoryCheckpointer,
    PostgresCheckpointer,
    run_batch,
    run_batch_sync,
    SQLiteCheckpointer,
)
from plait.errors import (
    BackendError,
    BudgetExceededError,
    CheckpointError,
    CheckpointMismatchError,
    ConfigError,
    DeadlineExceededError,
    GraphValidationError,
    InputValidationError,
    NodeFailedError,
    NodeTimeoutError,
    ParseError,
    PlaitError,
    RunCancelledError,
    RunError,
)
from plait.executors import (
    Backend,
    backend_for,
    Completion,
    FunctionBackend,
    JsonSchema,
    Message,
    OpenAIBackend,
    Request,
    SamplingParams,
    ScriptedBackend,
    tool,
    VLLMBackend,
)
from plait.orchestrator import (
    Event,
    Graph,
    Node,
    NodeRecord,
    read_trace,
    RetryPolicy,
    Route,
    Run,
    RunContext,
    RunResult,
    TokenUsage,
)
from plait.planners import ChainStep, FanOut, PlanAndExecute, ReAct, Refine, SubtaskTree
from plait.solvers import CSP, Explain, Formulate, ProposeAndRetract, solve, SolveCSP

from plait.viewer import write_view

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "errors",
    # graphs, runs and their results (plait.orchestrator)
    "Graph", "Node", "Route", "RetryPolicy", "RunContext", "Run", "RunResult", "NodeRecord", "TokenUsage", "Event",
    "read_trace",
    # LLM backends and tools (plait.executors)
    "Backend", "Request", "Message", "SamplingParams", "Completion", "JsonSchema", "ScriptedBackend",
    "FunctionBackend", "VLLMBackend", "OpenAIBackend", "backend_for", "tool",
    # durable runs (plait.durable)
    "run_batch", "run_batch_sync", "Checkpointer", "SQLiteCheckpointer", "MemoryCheckpointer", "PostgresCheckpointer",
    # reasoning nodes (plait.planners)
    "ChainStep", "FanOut", "SubtaskTree", "PlanAndExecute", "ReAct", "Refine",
    # constraint solving (plait.solvers)
    "CSP", "SolveCSP", "Formulate", "Explain", "ProposeAndRetract", "solve",
    # the run viewer: one HTML page per run (plait.viewer)
    "write_view",
    # the errors a run raises (the whole tree: plait.errors)
    "PlaitError", "GraphValidationError", "InputValidationError", "RunError", "NodeFailedError", "NodeTimeoutError",
    "BudgetExceededError", "DeadlineExceededError", "RunCancelledError", "BackendError", "ParseError",
    "CheckpointError", "CheckpointMismatchError", "ConfigError",
]

# Names that left the top level: `plait.X` and `from plait import X` still work for one release, with a
# DeprecationWarning naming the new import path.
_MOVED = {
    "plait.orchestrator": "GraphNode FunctionNode Param Signature RunStarted RunFinished NodeStarted NodeFinished "
                          "NodeFailed NodeRetried NodeSkipped NodeCancelled TokensUsed LoopIteration ThreadAbandoned "
                          "Custom JsonlTrace RichProgress",
    "plait.executors": "Sample TokenLogprob Regex Choice Grammar model_path pull_model Tool ToolFailure ToolRegistry "
                       "ToolRunner FlakyBackend",
    "plait.durable": "BatchResult BatchItem",
    "plait.planners": "Plan PlanStep Ref LLM_TOOL Planner plan_and_execute_graph ReActStep execute_plan "
                      "parse_json_plan parse_text_plan plan_problems plan_json_schema Template Parser TextParser "
                      "RegexParser NumberParser ChoiceParser ModelParser VoteResult Candidate Decision Aggregator "
                      "Majority LogprobWeighted BestOfN EarlyStop Quorum LLMJudge TreeResult TreeStats TaskRecord "
                      "TaskReply SubtaskSpec tree_script tree_call_key",
    "plait.solvers": "Variable IntRange AllDifferent Compare Expression Sum Table Implies AnyOf Expr parse_expr "
                     "CSPResult solve_async Formulation FewShot Proposal Retraction Conflict find_conflict",
    "plait.errors": "GraphError LoopLimitError ScriptExhaustedError ModelError ConstraintSyntaxError PlanError "
                    "ToolError VoteError SubtaskBudgetError ReplayMissError",
}
__getattr__ = _moved_names(__name__, {
    **{name: f"{home}.{name}" for home, names in _MOVED.items() for name in names.split()},
    "PlanOutcome": "plait.planners.PlanResult",
    "ReActOutcome": "plait.planners.ReActResult",
})
