"""plait: reasoning orchestration with hybrid control flow.

Declare reasoning graphs in Python (chains, fan-outs with votes, subtask trees,
plan-then-execute tool calls, CSP solvers) and run them on one async dataflow
runtime over an LLM backend (vLLM in process or over HTTP, or the scripted
test doubles).
"""

from plait import errors
from plait.errors import (
    BackendError,
    BudgetExceededError,
    DeadlineExceededError,
    GraphError,
    GraphValidationError,
    InputValidationError,
    LoopLimitError,
    NodeFailedError,
    NodeTimeoutError,
    ParseError,
    PlaitError,
    RunCancelledError,
    RunError,
    ScriptExhaustedError,
    ConstraintSyntaxError,
)
from plait.errors import ModelError  # issue 3

# -- plan-then-execute and tools (issue 5) --
from plait.errors import PlanError, ToolError
from plait.executors import Tool, ToolFailure, ToolRegistry, ToolRunner, tool
from plait.planners import (
    LLM_TOOL,
    Plan,
    PlanAndExecute,
    PlanOutcome,
    Planner,
    PlanStep,
    ReAct,
    ReActOutcome,
    ReActStep,
    Ref,
    execute_plan,
    parse_json_plan,
    parse_text_plan,
    plan_and_execute_graph,
    plan_json_schema,
    plan_problems,
)
# -- end plan-then-execute imports --
from plait.executors import (
    Backend,
    Choice,
    Completion,
    FunctionBackend,
    Grammar,
    JsonSchema,
    Message,
    Regex,
    Request,
    Sample,
    SamplingParams,
    ScriptedBackend,
    TokenLogprob,
)

# --- real backends and the model registry (issue 3) ---
from plait.executors import OpenAIBackend, VLLMBackend, backend_for, model_path, pull_model

from plait.orchestrator import (
    Custom,
    Event,
    FunctionNode,
    Graph,
    GraphNode,
    JsonlTrace,
    LoopIteration,
    Node,
    Param,
    Signature,
    NodeCancelled,
    NodeFailed,
    NodeFinished,
    NodeRecord,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    RetryPolicy,
    RichProgress,
    Route,
    Run,
    RunContext,
    RunFinished,
    RunResult,
    RunStarted,
    TokensUsed,
    TokenUsage,
    read_trace,
)

# --- solvers (issue 6: CSP solver nodes) -------------------------------------------------------
from plait.solvers import (
    CSP,
    AllDifferent,
    AnyOf,
    Compare,
    Conflict,
    CSPResult,
    Expr,
    Explain,
    Expression,
    Formulate,
    Formulation,
    Implies,
    IntRange,
    Proposal,
    ProposeAndRetract,
    Retraction,
    SolveCSP,
    Sum,
    Table,
    Variable,
    find_conflict,
    parse_expr,
    solve,
    solve_async,
)
# --- end solvers --------------------------------------------------------------------------------
# --- reasoning planners (issue 4: chain steps, fan-out votes, subtask trees) ---
from plait.errors import SubtaskBudgetError, VoteError
from plait.planners import (
    Aggregator,
    BestOfN,
    Candidate,
    ChainStep,
    ChoiceParser,
    Decision,
    EarlyStop,
    FanOut,
    LLMJudge,
    LogprobWeighted,
    Majority,
    ModelParser,
    NumberParser,
    Parser,
    Quorum,
    RegexParser,
    SubtaskSpec,
    SubtaskTree,
    TaskRecord,
    TaskReply,
    Template,
    TextParser,
    TreeResult,
    TreeStats,
    VoteResult,
    tree_call_key,
    tree_script,
)
# --- end reasoning planners ---

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "errors",
    # graph model and runtime
    "Graph", "GraphNode", "Node", "FunctionNode", "Param", "Signature", "Route", "RetryPolicy", "RunContext", "Run",
    "RunResult", "NodeRecord", "TokenUsage",
    # observability
    "Event", "RunStarted", "RunFinished", "NodeStarted", "NodeFinished", "NodeFailed", "NodeRetried",
    "NodeSkipped", "NodeCancelled", "TokensUsed", "LoopIteration", "Custom", "JsonlTrace", "RichProgress",
    "read_trace",
    # backends
    "Backend", "ScriptedBackend", "FunctionBackend", "Request", "Message", "SamplingParams", "Completion",
    "Sample", "TokenLogprob", "JsonSchema", "Regex", "Choice", "Grammar",
    # errors
    "PlaitError", "GraphError", "GraphValidationError", "InputValidationError", "RunError", "NodeFailedError",
    "NodeTimeoutError", "LoopLimitError", "BudgetExceededError", "DeadlineExceededError", "RunCancelledError",
    "BackendError", "ScriptExhaustedError", "ParseError",
    # real backends and the model registry (issue 3)
    "VLLMBackend", "OpenAIBackend", "backend_for", "model_path", "pull_model", "ModelError",
    # solvers (issue 6)
    "ConstraintSyntaxError", "CSP", "Variable", "IntRange", "AllDifferent", "Compare", "Expression", "Sum", "Table",
    "Implies", "AnyOf", "Expr", "parse_expr", "CSPResult", "solve", "solve_async", "SolveCSP",
    "Formulate", "Formulation", "Explain", "ProposeAndRetract", "Proposal", "Retraction", "Conflict", "find_conflict",
    # -- plan-then-execute and tools (issue 5) --
    "PlanError", "ToolError", "Tool", "ToolFailure", "ToolRegistry", "ToolRunner", "tool",
    "Plan", "PlanStep", "Ref", "LLM_TOOL", "Planner", "PlanAndExecute", "PlanOutcome", "plan_and_execute_graph",
    "ReAct", "ReActOutcome", "ReActStep", "execute_plan", "parse_json_plan", "parse_text_plan", "plan_problems",
    "plan_json_schema",
    # -- end plan-then-execute --
    # --- reasoning planners (issue 4) ---
    "VoteError", "SubtaskBudgetError", "ChainStep", "Template", "Parser", "TextParser", "RegexParser",
    "NumberParser", "ChoiceParser", "ModelParser", "FanOut", "VoteResult", "Candidate", "Decision",
    "Aggregator", "Majority", "LogprobWeighted", "BestOfN", "EarlyStop", "Quorum", "LLMJudge", "SubtaskTree",
    "TreeResult", "TreeStats", "TaskRecord", "TaskReply", "SubtaskSpec", "tree_script", "tree_call_key",
    # --- end reasoning planners ---
]
