"""What every checkpoint store keeps, and how its rows are checked when they are read back.

A store keeps four things:

* runs: id, graph name, graph fingerprint, input, model, status, output;
* node completions (one record per node activation), written in groups;
* recorded responses (LLM samples, tool results), write-once, by key;
* leases: which worker holds which batch input, until when.

Inputs, outputs, node outcomes and records are *payloads*: ``bytes`` or
``str`` the journal encodes (JSON); a store hands each back with the type it
was given and never interprets it. Nothing read from a store is unpickled or
evaluated: every row is checked against the types written, and anything else
(a crafted or foreign file, a pickle left by an older plait) is a one-line
:class:`~plait.CheckpointError`.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic_core import to_json

from plait._words import a_type
from plait.errors import CheckpointError

__all__ = ["Checkpointer", "StoredRun", "StoredNode", "Payload", "SCHEMA_VERSION", "encode_group", "decode_group",
           "checked_run", "checked_payload"]

SCHEMA_VERSION = 2  # 1: node groups and values were pickles (not read any more)
STATUSES = ("running", "ok", "partial", "failed", "cancelled", "interrupted")
Payload = bytes | str
T = TypeVar("T")


@dataclasses.dataclass
class StoredRun:
    """One run as the checkpoint knows it. ``status``: running, ok, partial, failed, cancelled."""

    run_id: str
    graph: str
    fingerprint: str
    input: Payload
    model: str = ""
    status: str = "running"
    output: Payload | None = None
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("ok", "partial", "failed")


@dataclasses.dataclass(slots=True)
class StoredNode:
    """One committed node activation (``key`` is ``node#activation``)."""

    key: str
    inputs_hash: Payload
    outcome: Payload
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0
    duration: float = 0.0
    attempts: int = 1


class Checkpointer(abc.ABC):
    """Persistence for durable runs. Implement the abstract methods; all are synchronous.

    ``save_node`` may buffer; :meth:`flush` makes everything saved so far
    durable. ``group_commit`` (seconds) tells the runtime how long a completed
    node that did less than that much work may wait in the buffer; nodes that
    did more, LLM responses, tool results and run rows are flushed at once.

    Leases give one batch input to one worker at a time: :meth:`take_lease`
    is atomic across processes (and machines, for a server store), a holder
    renews before ``ttl`` runs out, and a lease nobody renewed can be taken
    over, so a killed worker's inputs are not lost.
    """

    group_commit: float = 0.0

    @abc.abstractmethod
    def get_run(self, run_id: str) -> StoredRun | None: ...

    @abc.abstractmethod
    def put_run(self, run: StoredRun) -> None:
        """Insert or replace a run's row."""

    @abc.abstractmethod
    def list_runs(self, prefix: str = "") -> list[StoredRun]: ...

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Forget a run's row and its node completions (recorded responses stay: they are keyed by request)."""

    @abc.abstractmethod
    def load_nodes(self, run_id: str) -> dict[str, StoredNode]: ...

    @abc.abstractmethod
    def save_node(self, run_id: str, node: StoredNode) -> None:
        """Save one node activation (durable once :meth:`flush` returns)."""

    def flush(self) -> None:
        """Make every save so far durable (no-op for stores that do not buffer)."""

    @abc.abstractmethod
    def get_record(self, key: str) -> Payload | None:
        """A recorded response or tool result."""

    @abc.abstractmethod
    def put_record(self, key: str, value: Payload) -> None:
        """Record ``value`` under ``key`` unless something is recorded there already (write-once)."""

    @abc.abstractmethod
    def take_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Hold ``key`` for ``owner`` for ``ttl`` seconds; True if it was free, expired or already ``owner``'s."""

    @abc.abstractmethod
    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s hold to ``ttl`` seconds from now; False if ``owner`` no longer holds it."""

    @abc.abstractmethod
    def release_lease(self, key: str, owner: str) -> None:
        """Let go of ``key`` (nothing happens unless ``owner`` holds it)."""

    async def call(self, method: Callable[..., T], *args: Any) -> T:
        """Call one of this store's methods from async code (a server store runs it in a worker thread)."""
        return method(*args)

    def close(self) -> None:
        """Release the storage (idempotent)."""

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- checking rows read back ------------------------------------------------------------------------

def _malformed(where: str, what: str) -> CheckpointError:
    return CheckpointError(f"{where} holds {what}, which plait never writes; it was not used: "
                           "the file was changed by something else (use another checkpoint)")


def checked_payload(value: Any, where: str, what: str) -> Payload:
    if not isinstance(value, (bytes, str)):
        raise _malformed(where, f"{a_type(value)} as {what}")
    return value


def checked_run(row: tuple | list, where: str) -> StoredRun:
    """A run row (the columns of :class:`StoredRun`, in order) after checking every column's type."""
    if len(row) != 10:
        raise _malformed(where, f"a run row of {len(row)} columns")
    run_id, graph, fp, input_, model, status, output, error, created, updated = row
    for name, value in (("run id", run_id), ("graph", graph), ("fingerprint", fp), ("model", model)):
        if not isinstance(value, str):
            raise _malformed(where, f"{a_type(value)} as a run's {name}")
    if status not in STATUSES:
        raise _malformed(where, f"run {run_id[:60]!r} with status {str(status)[:20]!r}")
    if error is not None and not isinstance(error, str):
        raise _malformed(where, f"{a_type(error)} as the error of run {run_id[:60]!r}")
    for name, value in (("created", created), ("updated", updated)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _malformed(where, f"{a_type(value)} as the {name} time of run {run_id[:60]!r}")
    return StoredRun(run_id, graph, fp, checked_payload(input_, where, "a run's input"), model, status,
                     None if output is None else checked_payload(output, where, "a run's output"),
                     error, float(created), float(updated))


# -- node groups: one JSON document per commit --------------------------------------------------------

def _pack(value: Payload) -> Any:
    return value if isinstance(value, str) else {"b64": value}  # to_json writes the bytes as (URL-safe) base64


_FROM_URLSAFE = str.maketrans("-_", "+/")


def _unpack(value: Any, where: str) -> Payload:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str):
        try:  # URL-safe base64; groups written before 2026-12 used the standard alphabet, which this reads too
            return base64.b64decode(value["b64"].translate(_FROM_URLSAFE), validate=True)
        except ValueError:
            pass
    raise _malformed(where, f"a node payload of type {type(value).__name__}")


def encode_group(nodes: list[StoredNode]) -> str:
    """Several node completions as one JSON text (one row per commit, however many nodes it holds)."""
    return to_json([[n.key, _pack(n.inputs_hash), _pack(n.outcome), n.prompt_tokens, n.completion_tokens,
                     n.cached_tokens, n.requests, n.duration, n.attempts] for n in nodes],
                   bytes_mode="base64").decode()


_INTS = (3, 4, 5, 6, 8)


def decode_group(text: Any, where: str) -> list[StoredNode]:
    """The node completions of one group, each field checked; anything else is a CheckpointError."""
    if isinstance(text, bytes) and text[:1] == b"\x80":
        raise CheckpointError(f"{where} holds pickled node records (written by plait before JSON records); "
                              "they are not read, as unpickling can run code: start a new checkpoint")
    try:
        entries = json.loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        entries = None
    if not isinstance(entries, list):
        raise _malformed(where, "a node group that is not a JSON list")
    nodes = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 9 and isinstance(entry[0], str)
                and all(isinstance(entry[i], int) and not isinstance(entry[i], bool) for i in _INTS)
                and isinstance(entry[7], (int, float)) and not isinstance(entry[7], bool)):
            raise _malformed(where, "a node record that is not [key, hash, outcome, 4 counts, seconds, attempts]")
        nodes.append(StoredNode(entry[0], _unpack(entry[1], where), _unpack(entry[2], where), entry[3], entry[4],
                                entry[5], entry[6], float(entry[7]), entry[8]))
    return nodes
