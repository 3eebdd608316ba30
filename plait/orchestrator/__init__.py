"""Graph model, validation, dataflow runtime, events and tracing."""

from plait.orchestrator._context import RunContext
from plait.orchestrator._events import (
    CascadeEscalated,
    Custom,
    Event,
    FormulationChecked,
    LoopIteration,
    LoopStopped,
    ModelRouted,
    NodeCancelled,
    NodeFailed,
    NodeFinished,
    NodeRetried,
    NodeSkipped,
    NodeStarted,
    ProposalSettled,
    RunFinished,
    RunStarted,
    SubtaskTreeSolved,
    ThreadAbandoned,
    TokensUsed,
    VoteTallied,
)
from plait.orchestrator._graph import Graph, GraphNode
from plait.orchestrator._node import FunctionNode, Node, Param, RetryPolicy, Route, Signature
from plait.orchestrator._record import NodeRecord, RunResult, TokenUsage
from plait.orchestrator._runtime import Run
from plait.orchestrator._sinks import JsonlTrace, RichProgress, read_trace

__all__ = [
    "Graph", "GraphNode", "Node", "FunctionNode", "Param", "Signature", "RetryPolicy", "Route", "RunContext", "Run",
    "RunResult", "NodeRecord", "TokenUsage", "JsonlTrace", "RichProgress", "read_trace",
    "Event", "RunStarted", "RunFinished", "NodeStarted", "NodeFinished", "NodeFailed", "NodeRetried",
    "NodeSkipped", "NodeCancelled", "TokensUsed", "LoopIteration", "LoopStopped", "ThreadAbandoned",
    "Custom", "VoteTallied", "SubtaskTreeSolved", "FormulationChecked", "ProposalSettled",
    "CascadeEscalated", "ModelRouted",
]
