"""What the ``plait`` command line names, checked before any work starts.

The target module, its graph factory and ``make_backend()`` are user code: whatever they raise (``sys.exit``
included) becomes one :class:`UsageError` line naming the culprit, never a traceback. Paths to write
(``--trace``, ``--output``, ``--checkpoint``) and run ids are checked up front so that a typo costs one line,
not a run that fails when it first writes.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

from plait._words import a_type
from plait.orchestrator._graph import Graph

__all__ = ["UsageError", "load_target", "parse_input", "module_backend", "check_write_path", "check_run_id",
           "positive_seconds"]

# A run id is a key in the checkpoint and a label in `plait runs`: '/' is reserved for a batch's inputs
# (BATCH/INDEX), and control characters or a leading '-' would garble the table or the command line.
_SAFE_RUN_ID = re.compile(r"\w[\w.-]{0,99}")
_RUN_ID_RULE = "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit code 2."""


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[:limit] + "..."


def _call_user_code(what: str, advice: str, fn: Callable[[], Any]) -> Any:
    """Call user code; anything it raises, ``SystemExit`` included, is a one-line :class:`UsageError`."""
    try:
        return fn()
    except UsageError:
        raise
    except SystemExit as exc:
        raise UsageError(f"{what} called sys.exit({exc.code!r}); {advice}") from None
    except Exception as exc:
        detail = f"{type(exc).__name__}: {_first_line(exc)}".rstrip(": ")
        raise UsageError(f"{what} raised {detail}; {advice}") from None


def load_target(target: str) -> tuple[Graph, Any]:
    """Import ``MODULE:ATTR`` and return the Graph (ATTR defaults to ``graph``) and its module."""
    module_name, _, attr = target.partition(":")
    attr = attr or "graph"
    if not module_name:
        raise UsageError(f"target {target!r} names no module; use MODULE:GRAPH")
    module = _import(module_name)
    if not hasattr(module, attr):
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}")
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, Graph):
        obj = _call_user_code(f"graph factory {target}()", "fix it, or point the target at a Graph", obj)
    if not isinstance(obj, Graph):
        raise UsageError(f"{target!r} is {a_type(obj)}, not a plait Graph")
    return obj, module


def _import(name: str) -> Any:
    path = Path(name)
    if name.endswith(".py") or path.is_file():
        if not path.is_file():
            raise UsageError(f"no such file: {name}")
        spec = importlib.util.spec_from_file_location(f"_plait_target_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot import {name!r}: not a Python file")
        loader = spec.loader

        def load() -> Any:
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            loader.exec_module(module)
            return module
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())

        def load() -> Any:
            try:
                return importlib.import_module(name)
            except ModuleNotFoundError as exc:
                raise UsageError(f"cannot import module {name!r}: {exc}") from None
    advice = "fix the module (script code belongs under `if __name__ == \"__main__\":`)"
    return _call_user_code(f"importing module {name!r}", advice, load)


def module_backend(module: Any, name: str) -> Any:
    """The ``make_backend()`` of the target module (``name`` as the command line gave it), if it has one."""
    make = getattr(module, "make_backend", None)
    if not callable(make):
        return None
    from plait.executors._base import Backend

    backend = _call_user_code(f"make_backend() of module {name!r}", "fix it, or pass --model NAME", make)
    if not isinstance(backend, Backend):
        raise UsageError(f"make_backend() of module {name!r} returned an object of type {type(backend).__name__}, "
                         "not a plait Backend; return one (e.g. a ScriptedBackend) or pass --model NAME")
    return backend


def parse_input(text: str | None) -> Any:
    """``--input``: JSON text, or the path of a file holding JSON."""
    if text is None:
        return None
    source = "--input"
    if not text.lstrip().startswith(("{", "[", '"')) and Path(text).is_file():
        source = f"--input file {text!r}"
        text = read_utf8(text, source, "UTF-8 JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is neither valid JSON nor a readable JSON file: {exc}") from None
    except RecursionError:
        raise UsageError(f"{source} nests JSON arrays or objects too deeply to read; flatten it") from None


def read_utf8(path: str | Path, source: str, save_as: str) -> str:
    """The text of the file named on the command line as ``source``; a one-line UsageError if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                         f"save it as {save_as}") from None


def check_write_path(flag: str, path: str) -> None:
    """A file the command will write: not a folder, and in a folder that exists (URLs of stores pass)."""
    if "://" in path:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path!r} is a folder; give the path of a file in it")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path!r} is in {str(folder)!r}, which is not an existing folder; "
                         "create the folder or choose another path")


def check_run_id(run_id: str, *, from_inputs: str | None = None) -> None:
    """A run id is safe to store and to print (``_SAFE_RUN_ID``); ``from_inputs``: it came from that file's name."""
    if _SAFE_RUN_ID.fullmatch(run_id):
        return
    if from_inputs is None:
        raise UsageError(f"--run-id {run_id!r} is not a safe run id: use {_RUN_ID_RULE} "
                         "('/' is reserved for a batch's inputs, BATCH/INDEX)")
    raise UsageError(f"the batch id {run_id!r} taken from the name of --inputs {from_inputs!r} is not a safe run id: "
                     f"pass --run-id NAME with {_RUN_ID_RULE}")


def positive_seconds(text: str) -> float:
    """argparse type for ``--deadline``: a finite number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value
