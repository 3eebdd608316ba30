"""The record of a run: per-node outputs, timings, token counts, failures."""

from __future__ import annotations

import dataclasses
from typing import Any

from plait.orchestrator._events import Event

__all__ = ["RunResult", "NodeRecord", "TokenUsage"]


@dataclasses.dataclass(slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cache_hit_rate(self) -> float:
        """Share of prompt tokens served from the prefix cache (0 when no prompt tokens)."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def add(self, prompt: int, completion: int, cached: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cached_tokens += cached
        self.requests += 1


@dataclasses.dataclass(slots=True)
class NodeRecord:
    """What one node did. A node inside a loop or map runs several times: see ``outputs``."""

    name: str
    status: str = "pending"  # pending, running, ok, failed, skipped, cancelled, interrupted
    outputs: list[Any] = dataclasses.field(default_factory=list)
    runs: int = 0
    attempts: int = 0
    started: float | None = None  # seconds since run start, first activation
    finished: float | None = None  # seconds since run start, last activation
    busy: float = 0.0  # seconds spent running, summed over activations
    tokens: TokenUsage = dataclasses.field(default_factory=TokenUsage)
    tokens_by_model: dict[str, TokenUsage] = dataclasses.field(default_factory=dict)  # "default", or backends= names
    error: str | None = None  # "TypeName: message" of the last failure
    error_type: str | None = None  # the failure's exception class name, e.g. "NodeTimeoutError"
    routes: list[str] = dataclasses.field(default_factory=list)
    restored: int = 0  # activations taken from a checkpoint instead of run
    abandoned_threads: int = 0  # worker threads left running by attempts that timed out or were cancelled

    def note_error(self, exc: BaseException) -> str:
        """Record ``exc`` as this node's failure (as JSON-safe text) and return the error text."""
        self.error_type = type(exc).__name__
        self.error = f"{self.error_type}: {exc}"
        return self.error

    @property
    def retries(self) -> int:
        """Attempts beyond the first, summed over activations."""
        return max(self.attempts - self.runs, 0)

    @property
    def output(self) -> Any:
        """The latest output (None when the node produced none)."""
        return self.outputs[-1] if self.outputs else None


@dataclasses.dataclass(slots=True)
class RunResult:
    """Everything a run produced. Also carried by ``RunError.partial`` when a run stops early."""

    run_id: str
    graph: str
    status: str  # ok, partial (some nodes failed under on_error="skip"), failed, cancelled, interrupted
    output: Any
    nodes: dict[str, NodeRecord]
    tokens: TokenUsage
    duration: float
    events: list[Event] = dataclasses.field(default_factory=list)
    interrupts: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # pending: {id, node, question}
    #: tokens per backend name ("default" for backend=, else the names of backends=); nodes restored from a
    #: checkpoint count in ``tokens`` only
    tokens_by_model: dict[str, TokenUsage] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        # Short on purpose: a run record can hold thousands of outputs and events.
        return (f"<RunResult {self.graph!r} {self.status}: {len(self.nodes)} nodes, "
                f"{self.tokens.total} tokens, {self.duration * 1000:.1f} ms>")

    def __getitem__(self, node: Any) -> Any:
        """The latest output of a node (by name or node object)."""
        name = node if isinstance(node, str) else node.name
        return self.nodes[name].output

    @property
    def failures(self) -> dict[str, str]:
        return {n: r.error for n, r in self.nodes.items() if r.status == "failed" and r.error}

    def completed(self) -> dict[str, Any]:
        """Latest outputs of every node that finished at least once."""
        return {n: r.output for n, r in self.nodes.items() if r.outputs}

    def summary(self) -> str:
        """A small plain-text table of nodes, status, time and tokens."""
        rows = [f"{'node':<28} {'status':<9} {'runs':>4} {'busy_ms':>9} {'tokens':>7}"]
        for rec in self.nodes.values():
            rows.append(
                f"{rec.name[:28]:<28} {rec.status:<9} {rec.runs:>4} {rec.busy * 1000:>9.1f} {rec.tokens.total:>7}"
            )
        if len(self.tokens_by_model) > 1:
            rows.append("tokens by model: " + ", ".join(f"{name} {usage.total}"
                                                        for name, usage in self.tokens_by_model.items()))
        rows.append(
            f"run {self.status} in {self.duration * 1000:.1f} ms, {self.tokens.total} tokens "
            f"({self.tokens.cached_tokens} cached prompt tokens, hit rate {self.tokens.cache_hit_rate:.2f})"
        )
        return "\n".join(rows)
