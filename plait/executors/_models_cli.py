"""``plait models list | pull NAME | path NAME``: the registry on the command line."""

from __future__ import annotations

import argparse
import sys

from plait.executors._models import MODELS, is_pulled, model_path, models_dir, pull_model

__all__ = ["add_models_parser", "models_command"]


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``models`` subcommand on the ``plait`` parser."""
    models = sub.add_parser("models", help="list, pull or locate the models plait can fetch by name")
    actions = models.add_subparsers(dest="models_command", required=True)
    actions.add_parser("list", help="known models, whether each is pulled, and where they come from")
    pull = actions.add_parser("pull", help="download, verify and convert a model (a no-op when pulled)")
    pull.add_argument("name", nargs="+", help=f"one of: {', '.join(MODELS)}")
    path = actions.add_parser("path", help="print the folder of a pulled model")
    path.add_argument("name")


def models_command(args: argparse.Namespace) -> int:
    """Run a ``plait models`` subcommand; :class:`~plait.errors.ModelError` propagates to the CLI."""
    if args.models_command == "list":
        print(f"models folder: {models_dir()}  (set PLAIT_MODELS_DIR to move it)")
        for spec in MODELS.values():
            state = "pulled" if is_pulled(spec.name) else f"not pulled (~{spec.download_mb} MB download)"
            print(f"{spec.name:<20} {state}\n    {spec.description}\n    licence: {spec.licence}\n"
                  f"    source: {spec.provenance}")
        return 0
    if args.models_command == "path":
        print(model_path(args.name))
        return 0
    for name in args.name:
        print(pull_model(name, progress=_ProgressLine(name)))
    return 0


class _ProgressLine:
    """Progress on one stderr line (downloads in MB, other stages in steps)."""

    def __init__(self, name: str):
        self.name = name
        self._last = ""

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if stage.startswith("download"):
            amount = f"{done / 2**20:.0f}/{total / 2**20:.0f} MB" if total else f"{done / 2**20:.0f} MB"
        else:
            amount = f"{done}/{total}" if total else str(done)
        line = f"{self.name}: {stage} {amount}"
        if line != self._last:
            self._last = line
            end = "\n" if total and done >= total else "\r"
            print(line.ljust(79), end=end, file=sys.stderr, flush=True)
