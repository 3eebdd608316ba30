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

__all__ = [
    "Backend", "Choice", "Completion", "Constraint", "Grammar", "JsonSchema", "Message", "Regex", "Request",
    "Sample", "SamplingParams", "TokenLogprob", "FunctionBackend", "ScriptedBackend", "count_tokens",
]
