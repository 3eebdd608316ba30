"""Who answered a recorded run: the identity of each of its backends, kept in the run's ``model`` column.

A run with only the default backend keeps that backend's identity as it is
(what runs have always kept, so older checkpoints read the same). A run with
named backends (``backends={"small": ...}``) keeps a canonical JSON object
from name to identity (``"default"`` for ``backend=``). A replay rebuilds one
recording backend per name from it. The column is read as hostile data:
anything but that shape is a one-line :class:`~plait.CheckpointError`.

Recorded samples are keyed by :func:`sample_identity`: a named backend's
identity is prefixed with its name, so two names never share samples even
when their backends report the same identity (two doubles, two servers
without a model id).
"""

from __future__ import annotations

import json

from plait.errors import CheckpointError
from plait.orchestrator._models import DEFAULT

__all__ = ["write_identities", "read_identities", "sample_identity"]

_MAX_TEXT = 1 << 16  # a run's identities are a few names and model ids


def write_identities(identities: dict[str, str]) -> str:
    """The ``model`` column for a run with these backends (by name)."""
    if set(identities) <= {DEFAULT}:
        return identities.get(DEFAULT, "")
    return json.dumps(identities, separators=(",", ":"), ensure_ascii=False)  # in the order given (ctx.models)


def read_identities(text: str, run_id: str) -> dict[str, str]:
    """The identities :func:`write_identities` kept, by backend name."""
    if not text.startswith("{"):
        return {DEFAULT: text}
    try:
        data = json.loads(text) if len(text) <= _MAX_TEXT else None
    except (ValueError, RecursionError):
        data = None
    if (not isinstance(data, dict) or not data
            or not all(isinstance(k, str) and k.isidentifier() and isinstance(v, str) for k, v in data.items())):
        raise CheckpointError(f"run {run_id!r} in the checkpoint has an unreadable list of backends "
                              f"({text[:60]!r}); the file was not written by plait, or was damaged")
    return data


def sample_identity(name: str, identity: str) -> str:
    """What recorded samples of backend ``name`` are keyed by: the default's identity as it is, others' named."""
    return identity if name == DEFAULT else f"{name}:{identity}"
