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
from plait.executors._flaky import FlakyBackend
from plait.executors._scripted import FunctionBackend, ScriptedBackend, count_tokens
from plait.executors._tokenize import Tokenizer, hf_tokenizer, word_spans
from plait.executors._tool_runner import ToolFailure, ToolRunner
from plait.executors._tools import Tool, ToolRegistry, tool

# --- real backends and the model registry (issue 3) ---
from plait.executors._factory import backend_for
from plait.executors._models import MODELS, ModelSpec, model_path, models_dir, pull_model
from plait.executors._openai import OpenAIBackend
from plait.executors._pool import EndpointPool
from plait.executors._vllm import VLLMBackend

__all__ = [
    "Backend", "Choice", "Completion", "Constraint", "Grammar", "JsonSchema", "Message", "Regex", "Request",
    "Sample", "SamplingParams", "TokenLogprob", "FunctionBackend", "ScriptedBackend", "FlakyBackend", "count_tokens",
    "Tokenizer", "hf_tokenizer", "word_spans",
    # real backends and the model registry (issue 3)
    "VLLMBackend", "OpenAIBackend", "EndpointPool", "backend_for", "MODELS", "ModelSpec", "model_path", "models_dir", "pull_model",
    # tools (plan-then-execute, ReAct)
    "Tool", "ToolRegistry", "tool", "ToolRunner", "ToolFailure",
]
