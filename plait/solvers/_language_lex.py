"""Tokens of one line of the formulation language.

A line is tokenized by one regular expression (names, integers, quoted text,
operators; ``#`` starts a comment outside quotes), so lexing is linear and no
backtracking regex runs on model output. Each token records its bracket
depth, which is how statements find their top-level ``in``, ``->`` and commas.
Problems raise :class:`Fail` with the column; the caller adds the line.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["Fail", "Token", "Line", "lex", "read_int", "COMPARISONS", "OPEN", "CLOSE"]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<text>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|\.\.|\*\*|//|==|!=|<=|>=|.)
""", re.VERBOSE | re.DOTALL)
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
OPEN, CLOSE = "([{", ")]}"
_MAX_DIGITS = 15  # longer numbers are refused before int() reads them (MAX_VALUE has 13 digits)


class Fail(Exception):
    """A problem in one line: ``column`` counts from 1. ``fatal``: a size limit, reading stops there."""

    def __init__(self, message: str, column: int, fatal: bool = False):
        super().__init__(message)
        self.column = column
        self.fatal = fatal


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # name, number, text, op
    text: str
    start: int
    depth: int  # brackets open before this token (a closing bracket counts as closed)


@dataclasses.dataclass
class Line:
    number: int
    text: str  # the line without its comment
    tokens: list[Token]

    def slot(self, i: int, j: int) -> str:
        """The source text of tokens ``i..j-1``, verbatim."""
        last = self.tokens[j - 1]
        return self.text[self.tokens[i].start:last.start + len(last.text)]


def lex(number: int, raw: str) -> Line:
    """Tokens of one line up to its comment, with bracket depths."""
    tokens: list[Token] = []
    depth, end = 0, len(raw)
    for m in _TOKEN.finditer(raw):
        kind, text = m.lastgroup or "op", m.group()
        if kind == "space":
            continue
        if text == "#":
            end = m.start()
            break
        if text in "\"'":
            raise Fail(f"the text value starting here is not closed; end it with {text}", m.start() + 1)
        if kind == "op" and text in CLOSE:
            depth -= 1
        tokens.append(Token(kind, text, m.start(), depth))
        if kind == "op" and text in OPEN:
            depth += 1
    return Line(number, raw[:end].rstrip(), tokens)


def read_int(toks: list[Token]) -> int | None:
    """``[-] digits`` as an int; None for anything else."""
    sign = 1
    if len(toks) == 2 and toks[0].text == "-":
        sign, toks = -1, toks[1:]
    if len(toks) != 1 or toks[0].kind != "number":
        return None
    if len(toks[0].text) > _MAX_DIGITS:
        raise Fail(f"the number {toks[0].text[:20]}... has {len(toks[0].text)} digits; use numbers below 10**12",
                   toks[0].start + 1)
    return sign * int(toks[0].text)
