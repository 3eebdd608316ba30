"""The JSONL results file of a batch: appended as inputs finish, repaired on resume, sorted at the end.

Only a regular file is rewritten, through a temporary file renamed over it
(so a reader never sees half a file). A symbolic link is followed: the file
it points to is written and the link stays. A directory, a device or a pipe
is refused before the batch starts.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from plait.errors import ConfigError

__all__ = ["ResultsFile", "results_target"]


def results_target(path: str | Path) -> Path:
    """The file to write for ``path`` (a symlink's target); ValueError for what cannot hold results."""
    target = Path(os.path.realpath(path))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        if not target.parent.is_dir():
            raise ConfigError(f"results file {str(path)!r}: directory {str(target.parent)!r} does not exist") from None
        return target
    except OSError as exc:
        raise ConfigError(f"results file {str(path)!r} cannot be used: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"results file {str(path)!r} is a directory; give the path of a file (e.g. results.jsonl)")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"results file {str(path)!r} is not a regular file (a device, pipe or socket); "
                          "give the path of a file")
    return target


class ResultsFile:
    """One line per input index (``index`` key); see the module docstring."""

    def __init__(self, path: str | Path, *, resume: bool):
        self.path = results_target(path)
        self.lines: dict[int, str] = {}
        if resume and self.path.exists():
            self.lines = _read_results(self.path)
        self._rewrite()
        self.file = self.path.open("a", encoding="utf-8")

    def add(self, index: int, line: str) -> None:
        """Record input ``index``'s line (a later line for an index replaces the earlier one at the end)."""
        self.lines[index] = line
        self.file.write(line + "\n")
        self.file.flush()

    def close(self, *, sort: bool) -> None:
        self.file.close()
        if sort:
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as f:
                f.writelines(line + "\n" for _, line in sorted(self.lines.items()))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)


def _read_results(path: Path) -> dict[int, str]:
    """Complete, parseable lines by input index (the first line wins; a torn last line is dropped)."""
    lines: dict[int, str] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            if not raw.endswith("\n"):
                break
            try:
                index = json.loads(raw)["index"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(index, int) and not isinstance(index, bool):
                lines.setdefault(index, raw.rstrip("\n"))
    return lines
