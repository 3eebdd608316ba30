"""``plait view``: write the viewer page of a trace, a checkpoint's run or a batch."""

from __future__ import annotations

import argparse
from typing import Any


def add_view_parser(sub: Any) -> None:
    view = sub.add_parser("view", help="write a self-contained HTML page of a run (or a batch)")
    view.add_argument("source", help="a JSONL trace (plait run --trace), a checkpoint (SQLite file or "
                                     "postgresql:// URL) or a batch results file")
    view.add_argument("-o", "--output", required=True, metavar="HTML", help="the page to write")
    view.add_argument("--run-id", default=None, help="the run to show (default: all runs, as a batch page)")
    view.add_argument("--graph", default=None, metavar="MODULE:GRAPH",
                      help="the graph that wrote the checkpoint: its runs are replayed from their records "
                           "(no model) for full pages with edges, timeline and reasoning")


def view_command(args: argparse.Namespace) -> int:
    from plait._cli_inputs import check_write_path, load_target
    from plait.viewer import write_view

    check_write_path("-o", args.output)
    graph = load_target(args.graph)[0] if args.graph else None
    page = write_view(args.source, args.output, run_id=args.run_id, graph=graph)
    print(page)
    return 0
