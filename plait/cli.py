"""The ``plait`` command: run a graph, print a graph, view a run as a page, show the version.

Bad input (a missing module, a target or ``make_backend()`` that raises, something that is not a Graph,
invalid JSON, a path that cannot be written, an unsafe run id, input that fails validation) gives one
clear line on stderr and exit code 2, never a traceback. A run that fails (a node, or a ``--model`` server
that cannot be reached) gives its error on one line and exit code 1, as does a batch in which any input
failed. The output is printed as JSON (a ``str`` output as a JSON string). A run stopped by
``ctx.interrupt()`` prints its pending interrupts as a JSON list of ``{id, node, question}`` on stdout and
exits with code 3; answer them with
``--resume-with '{"ID": ANSWER}'`` (and the same ``--checkpoint`` and ``--run-id``). A reader that leaves
early (``plait run ... | head -1``) ends the command quietly with 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import anyio
from pydantic_core import to_jsonable_python

import plait
from plait._cli_inputs import (UsageError, check_run_id, check_write_path, load_target, module_backend,
                               parse_input, positive_seconds)
from plait._cli_models import named_backends, split_models, started
from plait.errors import BackendError, InputValidationError, ModelError, PlaitError, RunError

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 3  # the run stopped for ctx.interrupt(): its pending interrupts are on stdout


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (its sub-commands inherit this class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="plait", description="Reasoning orchestration with hybrid control flow.")
    parser.add_argument("--version", action="version", version=f"plait {plait.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a graph and print its output")
    run.add_argument("target", help="MODULE:GRAPH, where MODULE is a dotted module or a .py file")
    run.add_argument("--input", default=None, help="run input: JSON text, or the path of a JSON file")
    run.add_argument("--trace", default=None, help="write every event to this JSONL file")
    run.add_argument("--model", action="append", default=None, metavar="[NAME=]MODEL",
                     help="LLM to use (a registry name, local model folder, server URL, or comma-separated server "
                          "URLs: a pool); repeat as NAME=MODEL for the nodes that ask for model=NAME")
    run.add_argument("--token-budget", type=int, default=None, help="stop LLM work after this many tokens")
    run.add_argument("--deadline", type=positive_seconds, default=None, help="wall-clock seconds for the whole run")
    run.add_argument("--max-concurrency", type=int, default=None, help="cap on nodes running at once")
    run.add_argument("--summary", action="store_true", help="print per-node timings and tokens to stderr")
    run.add_argument("--progress", action="store_true", help="show a live progress display on stderr")
    durable = run.add_argument_group("durable runs")
    durable.add_argument("--checkpoint", default=None, metavar="DB",
                         help="commit every finished node to this SQLite file (created if absent) "
                              "or postgresql:// database")
    durable.add_argument("--run-id", default=None, help="the run (or batch) to start or resume in --checkpoint")
    durable.add_argument("--replay", action="store_true",
                         help="re-run --run-id from its recorded LLM responses and tool results (no model)")
    durable.add_argument("--resume-with", default=None, metavar="JSON",
                         help="answers to the pending interrupts of --run-id: a JSON object from interrupt id to "
                              "answer (exit code 3 means the run stopped for interrupts)")
    durable.add_argument("--no-cache", action="store_true", help="do not reuse recorded LLM responses")
    batch = run.add_argument_group("batch runs")
    batch.add_argument("--inputs", default=None, metavar="FILE.jsonl", help="run once per line of this file")
    batch.add_argument("--output", default=None, metavar="FILE.jsonl",
                       help="write one result line per input here (default: stdout)")
    batch.add_argument("--concurrency", type=int, default=4, help="inputs running at once (default 4)")
    batch.add_argument("--id-field", default=None, help="key of each input line that identifies it")
    batch.add_argument("--retry-failed", action="store_true", help="run inputs whose recorded run failed again")
    batch.add_argument("--force", action="store_true",
                       help="drop the results of a batch recorded for another graph (or version) instead of refusing")
    batch.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                       help="how long a killed worker's inputs wait before others take them over (default 30)")
    batch.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="run the inputs on Ray workers: 'local' (a cluster on this machine), 'auto' or "
                            "ray://HOST:PORT; needs --checkpoint (postgresql:// for a cluster of machines)")
    batch.add_argument("--workers", type=int, default=None, help="Ray workers (actors) for --ray (default 2)")

    graph = sub.add_parser("graph", help="print a graph as Mermaid (or DOT)")
    graph.add_argument("target", help="MODULE:GRAPH")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")

    from plait.durable._cli import add_runs_parser
    from plait.executors._models_cli import add_models_parser
    from plait.viewer._cli import add_view_parser

    add_models_parser(sub)
    add_runs_parser(sub)
    add_view_parser(sub)
    return parser


def _backend(model: str | None, module: Any, target: str) -> Any:
    if model:
        from plait import executors

        factory = getattr(executors, "backend_for", None)
        if factory is None:
            raise UsageError("--model needs the vLLM backend, which this install of plait lacks")
        try:
            return factory(model)
        except (PlaitError, ValueError) as exc:  # (ValueError: a malformed URL list)
            raise UsageError(str(exc)) from None
    return module_backend(module, target.partition(":")[0])


# Library messages name Python arguments; the command line says the flags that set them.
_FLAGS = {"run_id=": "--run-id", "batch_id=": "--run-id", "force=True": "--force", "cache=False": "--no-cache",
          "checkpoint=": "--checkpoint", "replay=True": "--replay", "replay=": "--replay", "resume=": "--resume-with"}
_ARGUMENT = re.compile("|".join(re.escape(word) for word in sorted(_FLAGS, key=len, reverse=True)))


_BACKENDS = re.compile(r"backends=\{'(\w+)': \.\.\.\}")  # what a node lacks: a named backend


def _flags(message: str) -> str:
    """``message`` with the Python arguments it names replaced by their ``plait run`` flags."""
    message = _BACKENDS.sub(lambda m: f"--model {m.group(1)}=MODEL", message)
    return _ARGUMENT.sub(lambda m: _FLAGS[m.group()], message)


def _print_output(output: Any) -> None:
    """Every output is printed as JSON, a ``str`` too (as a JSON string), so stdout always parses."""
    print(json.dumps(to_jsonable_python(output, fallback=repr), indent=2, ensure_ascii=False))


def _check_args(args: argparse.Namespace) -> None:
    if args.inputs and args.input is not None:
        raise UsageError("give either --input (one run) or --inputs (a batch), not both")
    if (args.output or args.id_field or args.retry_failed or args.force) and not args.inputs:
        raise UsageError("--output, --id-field, --retry-failed and --force belong to batch runs: "
                         "add --inputs FILE.jsonl")
    if not args.lease > 0:
        raise UsageError(f"--lease must be > 0 seconds, got {args.lease}")
    if (args.run_id or args.replay) and not args.checkpoint:
        raise UsageError("--run-id and --replay need --checkpoint DB")
    if args.resume_with is not None and (not args.run_id or args.inputs or args.replay):
        raise UsageError("--resume-with answers the interrupts of one run: add --checkpoint DB and --run-id ID "
                         "(not --inputs or --replay)")
    if args.replay and not args.run_id:
        raise UsageError("--replay needs --run-id of a recorded run")
    if args.replay and args.inputs:
        raise UsageError("--replay replays one run; batches are resumed with --checkpoint and --run-id")
    if args.inputs and (args.trace or args.summary):
        raise UsageError("--trace and --summary describe one run; a batch writes one result line per input "
                         "(--output) and a summary on stderr")
    if (args.ray or args.workers is not None) and not (args.inputs and args.checkpoint and args.ray):
        raise UsageError("--ray and --workers spread a batch over Ray workers sharing a checkpoint: "
                         "give --inputs FILE.jsonl, --checkpoint DB and --ray ADDRESS")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be >= 1, got {args.concurrency}")
    for flag in ("trace", "output", "checkpoint"):
        if getattr(args, flag):
            check_write_path(f"--{flag}", getattr(args, flag))
    if args.run_id is not None:
        check_run_id(args.run_id)
    elif args.inputs and args.checkpoint:
        check_run_id(Path(args.inputs).stem, from_inputs=args.inputs)


async def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    args.model, named = split_models(args.model)
    if named and args.ray:
        raise UsageError("--ray workers build one backend each from --model: named models (--model NAME=MODEL) "
                         "run in this process; drop --ray or the names")
    graph, module = load_target(args.target)
    if args.inputs:
        from plait.durable._cli import run_batch_command

        backend = None if args.ray else _backend(args.model, module, args.target)  # Ray workers build their own
        return await run_batch_command(args, graph, backend, named_backends(named))
    value = parse_input(args.input)
    backend = None if args.replay else _backend(args.model, module, args.target)
    backends = None if args.replay else named_backends(named)
    options = dict(trace=args.trace, token_budget=args.token_budget, deadline=args.deadline,
                   max_concurrency=args.max_concurrency, progress=args.progress)
    if args.checkpoint:
        options.update(checkpoint=args.checkpoint, run_id=args.run_id, replay=args.replay, cache=not args.no_cache,
                       resume=_answers(args.resume_with))
    try:
        run = graph.stream(value, backend=backend, backends=backends, **options)
    except (InputValidationError, ValueError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    if args.checkpoint and not args.run_id:
        print(f"plait: run id {run.journal.run_id} (resume with --run-id {run.journal.run_id})", file=sys.stderr)
    async with started(backend, backends):
        result = await run.result()
    if args.summary:
        print(result.summary(), file=sys.stderr)
    if result.status == "interrupted":
        print(json.dumps(to_jsonable_python(result.interrupts, fallback=repr), indent=2, ensure_ascii=False))
        print(f"plait: run {result.run_id} waits for {len(result.interrupts)} answer(s); resume with --run-id "
              f"{result.run_id} --resume-with '{{\"ID\": ANSWER}}'", file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_output(result.output)
    return 0


def _answers(text: str | None) -> dict[str, Any] | None:
    """``--resume-with``: a JSON object from interrupt id to answer."""
    if text is None:
        return None
    try:
        answers = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"--resume-with is not valid JSON ({str(exc)[:120]}); give an object like "
                         '\'{"review#0.0": true}\'') from None
    if not isinstance(answers, dict):
        raise UsageError(f"--resume-with must be a JSON object from interrupt id to answer, got "
                         f"{type(answers).__name__}")
    return answers


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the work was cancelled cleanly (runs record themselves as cancelled)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signal = signal.Signals(signum)


async def _interruptible(args: argparse.Namespace) -> int:
    """Run the command; on SIGINT/SIGTERM cancel it, let every run record its state, then raise Interrupted."""
    outcome: dict[str, Any] = {}

    async def watch(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                outcome["signal"] = signum
                scope.cancel()
                return

    async def work(scope: anyio.CancelScope) -> None:
        try:
            outcome["rc"] = await _run(args)
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup)
            outcome["error"] = _reportable(exc)
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, tg.cancel_scope)
        tg.start_soon(work, tg.cancel_scope)
    if "signal" in outcome:
        raise Interrupted(outcome["signal"])
    if "error" in outcome:
        raise outcome["error"]
    return outcome["rc"]


def _reportable(exc: Exception) -> BaseException:
    """The error to report for ``exc``: a closed stdout anywhere in an exception group, or a group's only error."""
    if not isinstance(exc, ExceptionGroup):
        return exc
    closed, _ = exc.split(BrokenPipeError)
    if closed is not None:  # the reader left; what the other tasks raised as a consequence does not matter
        return BrokenPipeError()
    errors = _leaves(exc)
    return errors[0] if len(errors) == 1 else exc


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [leaf for exc in group.exceptions
            for leaf in (_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # model text may hold lone surrogates: escape them, do not crash
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        if args.command == "graph":
            graph, _ = load_target(args.target)
            print(graph.to_mermaid() if args.format == "mermaid" else graph.to_dot(), end="")
            return 0
        if args.command == "models":
            from plait.executors._models_cli import models_command

            return models_command(args)
        if args.command == "runs":
            from plait.durable._cli import runs_command

            return runs_command(args)
        if args.command == "view":
            from plait.viewer._cli import view_command

            return view_command(args)
        return anyio.run(_interruptible, args)
    except Interrupted as exc:
        where = (f"committed work is in {args.checkpoint}: run the same command to resume"
                 if getattr(args, "checkpoint", None) else "without --checkpoint nothing was saved")
        print(f"plait: interrupted by {exc.signal.name}; {where}", file=sys.stderr)
        return 128 + exc.signal.value
    except UsageError as exc:
        print(f"plait: error: {_flags(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except PlaitError as exc:
        # a server that cannot be reached fails the run; an unknown model (ModelError) is a usage error
        if isinstance(exc, RunError) or (isinstance(exc, BackendError) and not isinstance(exc, ModelError)):
            print(f"plait: run failed: {_flags(str(exc).splitlines()[0])}", file=sys.stderr)
            return EXIT_RUN_FAILED
        lines = str(exc).splitlines()
        print(f"plait: error: {_flags(' '.join(line.strip() for line in lines))}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `plait run ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the flush at exit cannot fail
        return 0
    except OSError as exc:  # a file named on the command line could not be written after all
        where = f": {exc.filename}" if exc.filename else ""
        print(f"plait: error: {exc.strerror or exc}{where}; check the paths given to --trace, --output and "
              "--checkpoint", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # `python -m plait.cli`: run the imported module's main, so that its classes are the
    from plait.cli import main as _main  # ones plait.durable._cli raises (this file also runs as __main__)

    sys.exit(_main())
