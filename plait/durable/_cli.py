"""``plait run MODULE:GRAPH --inputs FILE.jsonl``: the batch half of the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from plait.durable._batch import BatchItem, InvalidInput, run_batch

__all__ = ["run_batch_command", "read_inputs", "add_runs_parser", "runs_command"]


def read_inputs(path: str) -> list[Any]:
    """One input per non-empty line; a line that is not JSON becomes an :class:`InvalidInput`."""
    from plait._cli_inputs import read_utf8
    from plait.cli import UsageError

    text = read_utf8(path, f"--inputs file {path!r}", "UTF-8 JSON lines")
    inputs: list[Any] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            inputs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            inputs.append(InvalidInput(f"line {number} of {path} is not valid JSON: {exc}"))
        except RecursionError:
            inputs.append(InvalidInput(f"line {number} of {path} nests JSON too deeply to read"))
    if not inputs:
        raise UsageError(f"--inputs file {path!r} has no inputs (expected one JSON value per line)")
    return inputs


async def run_batch_command(args: argparse.Namespace, graph: Any, backend: Any, backends: Any = None) -> int:
    """Run the batch; exit 0 when every input succeeded, 1 when some failed (each has its error line)."""
    from plait._cli_models import started
    from plait.cli import UsageError

    inputs = read_inputs(args.inputs)
    batch_id = args.run_id or Path(args.inputs).stem
    show = args.progress or sys.stderr.isatty()

    def to_stdout(item: BatchItem) -> None:
        print(item.to_json(), flush=True)

    options = dict(token_budget=args.token_budget, deadline=args.deadline, max_concurrency=args.max_concurrency,
                   cache=not args.no_cache) if args.checkpoint else dict(
        token_budget=args.token_budget, deadline=args.deadline, max_concurrency=args.max_concurrency)
    if backends:
        options["backends"] = backends
    common = dict(backend=backend, concurrency=args.concurrency, checkpoint=args.checkpoint, batch_id=batch_id,
                  output=args.output, id_field=args.id_field, progress=show, retry_failed=args.retry_failed,
                  on_item=None if args.output else to_stdout, force=args.force, lease=args.lease,
                  executor=_ray_executor(args), **options)
    try:
        async with started(backend, backends):
            result = await run_batch(graph, inputs, **common)
    except ValueError as exc:  # e.g. --output names a directory
        raise UsageError(str(exc)) from None
    except BrokenPipeError:  # stdout's reader left (`| head`): plait.cli ends quietly
        raise
    except OSError as exc:  # the results file could not be written (a full disk)
        name = exc.filename or args.output
        print(f"plait: error: cannot write {name}: {exc.strerror or exc}; free space and run the same command "
              "again (with --checkpoint, finished inputs are kept)", file=sys.stderr)
        return 1
    print(result.summary(), file=sys.stderr)
    return 1 if result.failed else 0


def _ray_executor(args: argparse.Namespace) -> Any:
    """``--ray ADDRESS --workers N``: workers that import the target and build the backend (``--model``) themselves."""
    if not args.ray:
        return None
    from plait.cli import UsageError
    from plait.durable._ray import RayExecutor

    try:
        # Ray copies its workers' log lines to the driver's stdout: not into the results stream (they stay in
        # the cluster's log folder)
        quiet = {} if args.output else {"log_to_driver": False}
        return RayExecutor(address=None if args.ray == "local" else args.ray, workers=args.workers or 2,
                           backend=args.model, graph=args.target, init_options=quiet)
    except ImportError as exc:
        raise UsageError(str(exc)) from None


def add_runs_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``plait runs CHECKPOINT``: what a checkpoint holds."""
    runs = sub.add_parser("runs", help="list the runs recorded in a checkpoint file")
    runs.add_argument("checkpoint", help="the SQLite checkpoint file or postgresql:// URL")
    runs.add_argument("--prefix", default="", help="only run ids starting with this (a batch: 'BATCH/')")


def runs_command(args: argparse.Namespace) -> int:
    """Print one line per run: id, graph, status, nodes committed, last update; then counts by status."""
    from plait.cli import UsageError
    from plait.durable._store import is_url, open_store

    if not is_url(args.checkpoint) and not Path(args.checkpoint).is_file():
        raise UsageError(f"no checkpoint file {args.checkpoint!r}")
    with open_store(args.checkpoint)[0] as store:
        runs = store.list_runs(args.prefix)
        print(f"{'run id':<32} {'graph':<20} {'status':<10} {'nodes':>6}  updated (UTC)")
        counts: dict[str, int] = {}
        for run in runs:
            counts[run.status] = counts.get(run.status, 0) + 1
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(run.updated))
            nodes = len(store.load_nodes(run.run_id))
            print(f"{run.run_id[:32]:<32} {run.graph[:20]:<20} {run.status:<10} {nodes:>6}  {stamp}")
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    print(f"{len(runs)} run(s): {summary}")
    return 0
