"""benchmarks/reasoning.py's answer mapping: each reasoning-gym set's answer format and its CSP answer variables.

For every set an adapter says which variables a formulation must declare
(``names``: what ``Formulate(answer=...)`` requires, and the one line telling
the model their names), how a CSP solution becomes the answer string the
set's own scorer wants (``render``), and how the model-alone arms' final
answer is extracted under a constraint (``extraction`` gives a regex or a
choice; ``finish`` turns the extracted text into the answer string). Grids
are written as the puzzle writes them: futoshiki keeps the puzzle's ``<``,
``>``, ``∧``, ``∨`` between the cells.
"""

from __future__ import annotations

import re
from typing import Any

from plait.executors import Choice, Regex

__all__ = ["ADAPTERS", "Adapter"]


class Adapter:
    """One reasoning-gym set's answer mapping (override what differs)."""

    name = ""

    def names(self, entry: dict) -> list[str]:
        raise NotImplementedError

    def hint(self, entry: dict) -> str:
        raise NotImplementedError

    def render(self, entry: dict, values: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def extraction(self, entry: dict) -> Regex | Choice:
        raise NotImplementedError

    def finish(self, entry: dict, text: str) -> str:
        return text.strip()

    def answer(self, entry: dict, solution: dict[str, Any] | None) -> str | None:
        """The answer string for a solution, or None when the solution lacks an answer variable."""
        if not solution:
            return None
        lowered = {k.lower(): v for k, v in solution.items()}
        values = {n: lowered.get(n.lower()) for n in self.names(entry)}
        if any(v is None for v in values.values()):
            return None
        return self.render(entry, values)


class Zebra(Adapter):
    name = "zebra_puzzles"

    def people(self, entry: dict) -> list[str]:
        found = re.search(r"unique name: ([^\n]+)", entry["question"])
        return [p.strip() for p in found.group(1).split(",")] if found else []

    def house(self, entry: dict) -> int:
        found = re.search(r"lives in House (\d+)", entry["question"])
        return int(found.group(1)) if found else 1

    def names(self, entry: dict) -> list[str]:
        return [re.sub(r"\W", "_", p) for p in self.people(entry)]

    def hint(self, entry: dict) -> str:
        return (f"Variables: one per attribute value, its house number. The answer variables are the people: "
                f"{', '.join(self.names(entry))}.")

    def render(self, entry: dict, values: dict[str, Any]) -> str | None:
        there = [p for p, n in zip(self.people(entry), self.names(entry)) if values[n] == self.house(entry)]
        return there[0] if len(there) == 1 else None

    def extraction(self, entry: dict) -> Choice:
        return Choice(options=self.people(entry))


class Cryptarithm(Adapter):
    name = "cryptarithm"

    def names(self, entry: dict) -> list[str]:
        return sorted(entry["metadata"]["letters"])

    def hint(self, entry: dict) -> str:
        return f"Variables: one per letter, its digit 0..9: {', '.join(self.names(entry))}."

    def render(self, entry: dict, values: dict[str, Any]) -> str | None:
        return ",".join(f"{letter}={values[letter]}" for letter in self.names(entry))

    def extraction(self, entry: dict) -> Regex:
        return Regex(pattern=",".join(f"{letter}=[0-9]" for letter in self.names(entry)))


class _Grid(Adapter):
    """Cells ``r1c1`` .. ``rNcN`` (row, column from 1), values 1..N."""

    def size(self, entry: dict) -> int:
        raise NotImplementedError

    def names(self, entry: dict) -> list[str]:
        n = self.size(entry)
        return [f"r{r}c{c}" for r in range(1, n + 1) for c in range(1, n + 1)]

    def hint(self, entry: dict) -> str:
        n = self.size(entry)
        return f"Variables: one per cell, named r1c1 .. r{n}c{n} (row, column), values 1..{n}."

    def rows(self, entry: dict, values: dict[str, Any]) -> list[list[str]]:
        n = self.size(entry)
        return [[str(values[f"r{r}c{c}"]) for c in range(1, n + 1)] for r in range(1, n + 1)]

    def extraction(self, entry: dict) -> Regex:
        n = self.size(entry)
        row = f"[1-{n}]( [1-{n}]){{{n - 1}}}"
        return Regex(pattern=f"{row}(\\n{row}){{{n - 1}}}")


class MiniSudoku(_Grid):
    name = "mini_sudoku"

    def size(self, entry: dict) -> int:
        return 4

    def render(self, entry: dict, values: dict[str, Any]) -> str | None:
        return "\n".join(" ".join(row) for row in self.rows(entry, values))


class Futoshiki(_Grid):
    name = "futoshiki"

    def size(self, entry: dict) -> int:
        return int(entry["metadata"]["board_size"])

    def template(self, entry: dict) -> list[str]:
        found = re.search(r"puzzle:\n(.*?)\n\s*\nEnsure", entry["question"], re.S)
        return found.group(1).strip("\n").split("\n") if found else []

    def render(self, entry: dict, values: dict[str, Any]) -> str | None:
        rows = iter(self.rows(entry, values))
        lines = []
        for i, line in enumerate(self.template(entry)):
            if i % 2 == 0:  # a row of cells; odd lines hold the vertical signs
                cells = iter(next(rows, []))
                line = re.sub(r"[_\d]", lambda m: next(cells, m.group()), line)
            lines.append(line)
        return "\n".join(lines)

    def finish(self, entry: dict, text: str) -> str:
        digits = [line.split() for line in text.strip().split("\n")]
        values = {f"r{r + 1}c{c + 1}": d for r, row in enumerate(digits) for c, d in enumerate(row)}
        return self.answer(entry, values) or text


class NQueens(Adapter):
    name = "n_queens"

    def size(self, entry: dict) -> int:
        return len(entry["metadata"]["puzzle"])

    def names(self, entry: dict) -> list[str]:
        return [f"q{r}" for r in range(1, self.size(entry) + 1)]

    def hint(self, entry: dict) -> str:
        n = self.size(entry)
        return f"Variables: one per row, named q1 .. q{n}: the column (1..{n}) of the queen in that row."

    def render(self, entry: dict, values: dict[str, Any]) -> str | None:
        n = self.size(entry)
        if not all(isinstance(values[f"q{r}"], int) and 1 <= values[f"q{r}"] <= n for r in range(1, n + 1)):
            return None
        return "\n".join(" ".join("Q" if values[f"q{r}"] == c else "_" for c in range(1, n + 1))
                         for r in range(1, n + 1))

    def extraction(self, entry: dict) -> Regex:
        n = self.size(entry)
        row = f"[_Q]( [_Q]){{{n - 1}}}"
        return Regex(pattern=f"{row}(\\n{row}){{{n - 1}}}")


ADAPTERS: dict[str, Adapter] = {a.name: a for a in (Zebra(), Cryptarithm(), Futoshiki(), MiniSudoku(), NQueens())}
