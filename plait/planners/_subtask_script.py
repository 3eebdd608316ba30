"""tree_script: canned replies for a SubtaskTree on a ScriptedBackend, keyed by task path."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from plait.errors import ScriptExhaustedError
from plait.executors._base import Request

__all__ = ["tree_script", "tree_call_key"]

_LINE = re.compile(r"^(Task|Subtask (?P<sub>[\d.]+)|Result (?P<res>[\d.]+)):", re.M)


def tree_call_key(prompt: str) -> str:
    """Which call of a SubtaskTree a prompt is: ``"root"``, ``"2.1"`` (plan) or ``"2:conclude"``.

    Read from the last ``Task:``/``Subtask p:``/``Result p:`` line of the
    prompt (re-asks keep the key of the call they repeat).
    """
    last = None
    for last in _LINE.finditer(prompt):
        pass
    if last is None:
        raise ValueError("not a SubtaskTree prompt: no 'Task:' line")
    if last.group("sub"):
        return last.group("sub")
    if last.group("res"):
        parent = last.group("res").rpartition(".")[0]
        return f"{parent or 'root'}:conclude"
    return "root"


def tree_script(replies: Mapping[str, Any]) -> Callable[[Request], Any]:
    """A ScriptedBackend script answering each SubtaskTree call from ``replies[tree_call_key(prompt)]``.

    A value is a reply (str, Sample, exception), a list of replies consumed in
    order by successive calls with that key (re-asks), or a callable
    ``request -> reply``. Example::

        ScriptedBackend(tree_script({
            "root": '{"thought": "two parts", "subtasks": [{"task": "a"}, {"task": "b"}]}',
            "1": '{"thought": "", "answer": "A"}', "2": '{"thought": "", "answer": "B"}',
            "root:conclude": '{"thought": "combine", "answer": "A and B"}',
        }))
    """
    queues = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in replies.items()}

    def reply(request: Request) -> Any:
        key = tree_call_key(request.prompt_text())
        if key not in queues:
            raise ScriptExhaustedError(f"tree_script has no reply for call {key!r}; keys are {sorted(queues)}")
        value = queues[key]
        if isinstance(value, list):
            if not value:
                raise ScriptExhaustedError(f"tree_script ran out of replies for call {key!r}")
            return value.pop(0)
        return value(request) if callable(value) else value

    return reply
