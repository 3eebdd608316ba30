"""LLM backends (interface, test doubles, vLLM) and tool execution."""

from plait.executors._base import (
    Backend,
    Choice,
    Completion,
    Constraint,
    Grammar,
    JsonSchema,
    Message,
    Regex,
    Request,
    Sample,
    SamplingParams,
    TokenLogprob,
)
from plait.executors._scripted import FunctionBackend, ScriptedBackend, count_tokens
from plait.executors._tool_runner import ToolFailure, ToolRunner
from plait.executors._tools import Tool, ToolRegistry, tool

__all__ = [
    "Backend", "Choice", "Completion", "Constraint", "Grammar", "JsonSchema", "Message", "Regex", "Request",
    "Sample", "SamplingParams", "TokenLogprob", "FunctionBackend", "ScriptedBackend", "count_tokens",
    # tools (plan-then-execute, ReAct)
    "Tool", "ToolRegistry", "tool", "ToolRunner", "ToolFailure",
]
