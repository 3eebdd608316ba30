"""Session fixtures for backend tests: one in-process vLLM engine and one real vLLM server per session.

Both serve ``smollm2-135m`` from the model registry (pulled on first use; ``make test`` pulls it
beforehand). Each test builds its backend through a factory and enters it with ``async with``
inside its own event loop; in-process backends share the session's engine, so the engine
starts once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import anyio
import httpx
import pytest

from plait import JsonSchema, Request, ScriptedBackend
from plait.executors import Choice, Grammar, Regex, Sample, TokenLogprob
from plait.executors import Backend, OpenAIBackend, VLLMBackend, pull_model, word_spans
from plait.executors._vllm import DEFAULT_ENGINE_OPTIONS
from plait.executors._vllm_engine import CPU_ENV, cpu_engine_defaults

MODEL = "smollm2-135m"
MAX_MODEL_LEN = 2048
SERVER_START_TIMEOUT = 600


@pytest.fixture(scope="session")
def model_path() -> str:
    return str(pull_model(MODEL))


@pytest.fixture(scope="session")
def vllm_engine(model_path: str) -> Iterator[Callable[..., VLLMBackend]]:
    """A factory of VLLMBackends over one engine that lives for the whole session."""

    def make(**options) -> VLLMBackend:
        return VLLMBackend(MODEL, max_model_len=MAX_MODEL_LEN, **options)

    keeper = make()
    anyio.run(keeper.start)
    yield make
    anyio.run(keeper.aclose)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_flags(options: dict) -> list[str]:
    """Engine options as `vllm serve` flags; booleans are switches (``--flag`` / ``--no-flag``), configs JSON."""
    flags: list[str] = []
    for option, value in options.items():
        name = option.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, dict):
            flags += [f"--{name}", json.dumps(value)]
        else:
            flags += [f"--{name}", str(value)]
    return flags


@pytest.fixture(scope="session")
def vllm_server(model_path: str, tmp_path_factory) -> Iterator[str]:
    """A real vLLM OpenAI-compatible server on 127.0.0.1 at a free port; yields its base URL."""
    port = free_port()
    log_file = tmp_path_factory.mktemp("vllm-server") / "server.log"
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path, "--served-model-name", MODEL,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager", "--enable-prefix-caching",
        "--enable-prompt-tokens-details", "--disable-log-stats",
    ]
    # the in-process backend's CPU and structured-output settings, for a fair match
    command += server_flags({**cpu_engine_defaults(),
                             "structured_outputs_config": DEFAULT_ENGINE_OPTIONS["structured_outputs_config"]})
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in CPU_ENV.items()}}
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, log_file)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen, log_file) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM server exited with {process.returncode}:\n{log_file.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"vLLM server not healthy after {SERVER_START_TIMEOUT}s:\n{log_file.read_text()[-3000:]}")


# --- the scripted double: a deterministic "model" that honours constraints like an engine would ---

_WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()
REGEX_SAMPLES = {r"[0-9]{3}-[a-z]{2}": "417-ab", "[0-9]{1500}": "7" * 1500}


_SHAPER = ScriptedBackend([])  # its _sample applies a request's stop strings and token limits to a reply


def scripted_reply(request: Request) -> list[Sample]:
    """Per-sample replies; long generations (max_tokens >= 1000) take seconds, like a real engine."""
    p = request.params
    replies = []
    for i in range(p.n):
        constraint = p.constraint
        if isinstance(constraint, Choice):
            text = constraint.options[i % len(constraint.options)]
        elif isinstance(constraint, Regex):
            text = REGEX_SAMPLES[constraint.pattern]
        elif isinstance(constraint, JsonSchema):
            text = '{"city":"Paris","population":2}'
        elif isinstance(constraint, Grammar):
            text = "(42)"
        else:
            start = (len(request.prompt_text()) + (i * 7 if p.temperature else 0)) % len(_WORDS)
            text = " ".join(_WORDS[(start + k) % len(_WORDS)] for k in range(40))
        replies.append(text)
    samples = [_SHAPER._sample(request, text) for text in replies]  # stop strings, min/max_tokens, as served
    if p.logprobs is not None:
        samples = [s.model_copy(update={"logprobs": _fake_logprobs(s, p.logprobs)}) for s in samples]
    return samples


def _fake_logprobs(sample: Sample, k: int) -> tuple[TokenLogprob, ...]:
    tokens = [sample.text[a:b] for a, b in word_spans(sample.text)][: sample.completion_tokens]
    alternatives = {f"alt{j}": -1.0 - j for j in range(k)}
    return tuple(TokenLogprob(token=t, logprob=-0.5, top={t: -0.5, **alternatives}) for t in tokens)


def make_scripted() -> Backend:
    return ScriptedBackend(scripted_reply, latency=lambda r: 5.0 if r.params.max_tokens >= 1000 else 0.0)


@pytest.fixture(scope="session", params=["scripted", "vllm", "openai"])
def backend_kind(request) -> str:
    return request.param


@pytest.fixture
def make_backend(backend_kind: str, request) -> Callable[..., Backend]:
    """A factory of fresh backends of the parametrized kind (enter each with ``async with``)."""
    if backend_kind == "scripted":
        return lambda **options: make_scripted()
    if backend_kind == "vllm":
        return request.getfixturevalue("vllm_engine")
    url = request.getfixturevalue("vllm_server")
    return lambda **options: OpenAIBackend(url, MODEL, **options)
