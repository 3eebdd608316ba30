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


def view_command(args: argparse.Namespace) -> int:
    from plait._cli_inputs import check_write_path
    from plait.viewer import write_view

    check_write_path("-o", args.output)
    page = write_view(args.source, args.output, run_id=args.run_id)
    print(page)
    return 0
