"""Reading one line of the formulation language into statements: tokens, then the statement's form.

A line is tokenized by one regular expression (names, integers, quoted text,
operators; ``#`` starts a comment outside quotes), so lexing is linear and
no backtracking regex runs on model output. The statement's form is read
from its tokens alone, without knowing the declared variables:

* ``NAMES in DOMAIN``: a declaration (``S E N D in 0..9``, ``C in {"red", "blue"}``);
* ``(A, B) in {(1, 2), (3, 4)}`` / ``not in``: a table of allowed / forbidden rows;
* ``alldifferent(...)``, ``any(...)``, ``compare(...)``, ``sum(...) OP INT``;
* ``CONDITION -> CONDITION``: an implication;
* anything else: an expression constraint, kept verbatim for :func:`~plait.solvers._expr.parse_expr`;
* ``{...}``: one constraint as JSON, what the printer writes for constraints the compact forms cannot carry.

Problems raise :class:`Fail` with the column; the caller adds the line.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Union

from pydantic import TypeAdapter, ValidationError

from plait.solvers._model import AllDifferent, AnyOf, Compare, CSPConstraint, Expression, Implies, Sum, Table

__all__ = ["Fail", "Token", "Line", "Declaration", "DistinctExprs", "Statement", "lex", "read_statement",
           "COMPARISONS"]

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<text>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|\.\.|\*\*|//|==|!=|<=|>=|.)
""", re.VERBOSE | re.DOTALL)
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_OPEN, _CLOSE = "([{", ")]}"
_MAX_DIGITS = 15  # longer numbers are refused before int() reads them (MAX_VALUE has 13 digits)
_LOW = {"and", "or", "not", "in", "is", "if", "else", "lambda", "->", ":=", *COMPARISONS}
_CONSTRAINT = TypeAdapter(CSPConstraint)


class Fail(Exception):
    """A problem in one line: ``column`` counts from 1."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.column = column


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


@dataclasses.dataclass
class Declaration:
    names: list[tuple[str, int]]  # name, column
    domain: Union[dict[str, int], list[Any]]  # a range as {"min", "max"}, validated with each Variable
    size: int


@dataclasses.dataclass
class DistinctExprs:
    """``alldifferent`` over expressions: expanded into pairwise ``!=`` once the variables are known."""

    args: list[tuple[str, int]]  # text, column


Statement = Union[Declaration, DistinctExprs, CSPConstraint]


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
        if kind == "op" and text in _CLOSE:
            depth -= 1
        tokens.append(Token(kind, text, m.start(), depth))
        if kind == "op" and text in _OPEN:
            depth += 1
    return Line(number, raw[:end].rstrip(), tokens)


def read_statement(line: Line) -> Statement:
    """The statement one non-empty line holds (its form only: declared names are checked later)."""
    try:
        return _statement(line)
    except ValidationError as exc:
        raise Fail(exc.errors()[0]["msg"].removeprefix("Value error, "), line.tokens[0].start + 1) from None


def _statement(line: Line) -> Statement:
    toks = line.tokens
    if toks[0].text == "{":
        return _json(line)
    top = [i for i, t in enumerate(toks) if t.depth == 0]
    for i in top:
        if toks[i].text == "in":
            return _in_statement(line, i)
    for i in top:
        if toks[i].text == "->":
            return Implies.model_validate({"if": _side(line, 0, i), "then": _side(line, i + 1, len(toks))})
    if len(toks) > 1 and toks[1].text == "(" and toks[0].text in ("alldifferent", "any", "compare"):
        return _call(line)
    if toks[0].text == "sum" and len(toks) > 1 and toks[1].text == "(":
        found = _sum(line)
        if found is not None:
            return found
    if all(t.kind == "name" for t in toks) and len(toks) > 1:
        raise Fail("a declaration needs 'in' and a domain, e.g. 'A B C in 1..9'", toks[0].start + 1)
    return Expression(expression=line.slot(0, len(toks)))


def _side(line: Line, i: int, j: int) -> str:
    if i >= j:
        where = line.tokens[min(i, len(line.tokens) - 1)].start + 1
        raise Fail("an implication needs a condition on each side of '->', e.g. 'A == 1 -> B > 2'", where)
    return line.slot(i, j)


def _json(line: Line) -> CSPConstraint:
    try:
        return _CONSTRAINT.validate_python(json.loads(line.text))
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError and ValidationError are ValueErrors
        detail = exc.errors()[0]["msg"].removeprefix("Value error, ") if isinstance(exc, ValidationError) else str(exc)
        raise Fail(f"a line starting with '{{' is one constraint as JSON, and this one is not valid: {detail}",
                   1) from None


def _args(line: Line, open_at: int) -> tuple[list[tuple[int, int]], int]:
    """The comma-separated token ranges inside the bracket at ``open_at``, and the index of its closer."""
    toks, depth = line.tokens, line.tokens[open_at].depth + 1
    parts, start = [], open_at + 1
    for j in range(open_at + 1, len(toks)):
        if toks[j].depth == depth - 1:  # the closing bracket
            parts.append((start, j))
            return [p for p in parts if p != (open_at + 1, open_at + 1) or len(parts) > 1], j
        if toks[j].depth == depth and toks[j].text == ",":
            parts.append((start, j))
            start = j + 1
    raise Fail(f"'{toks[open_at].text}' is not closed", toks[open_at].start + 1)


def _call(line: Line) -> CSPConstraint | DistinctExprs:
    toks, keyword = line.tokens, line.tokens[0].text
    parts, close = _args(line, 1)
    if close != len(toks) - 1:
        raise Fail(f"{keyword}(...) must be the whole statement; the text after its ')' is not allowed",
                   toks[close + 1].start + 1)
    for i, j in parts:
        if i == j:
            raise Fail(f"an empty argument in {keyword}(...)", toks[i].start + 1)
    if keyword == "compare":
        ops = [k for k in range(2, close) if toks[k].depth == 1 and toks[k].text in COMPARISONS]
        if len(parts) != 1 or len(ops) != 1 or ops[0] in (2, close - 1):
            raise Fail("compare(...) holds one comparison of two expressions, e.g. 'compare(A + 1 == B)'",
                       toks[0].start + 1)
        k = ops[0]
        return Compare(left=line.slot(2, k), op=toks[k].text, right=line.slot(k + 1, close))
    if keyword == "any":
        return AnyOf(conditions=[line.slot(i, j) for i, j in parts])
    if len(parts) < 2:
        raise Fail("alldifferent(...) needs at least two variables or expressions", toks[0].start + 1)
    if all(j == i + 1 and toks[i].kind == "name" for i, j in parts):
        return AllDifferent(variables=[toks[i].text for i, _ in parts])
    return DistinctExprs([(_operand(line, i, j), toks[i].start + 1) for i, j in parts])


def _operand(line: Line, i: int, j: int) -> str:
    """An alldifferent argument, parenthesized when ``!=`` would otherwise bind into it."""
    text = line.slot(i, j)
    base = line.tokens[i].depth
    low = any(t.depth == base and t.text in _LOW for t in line.tokens[i:j])
    return f"({text})" if low else text


def _sum(line: Line) -> Sum | None:
    """``sum(A, 2 * B) <= 10`` as a Sum; None when the line is another expression using sum()."""
    toks = line.tokens
    try:
        parts, close = _args(line, 1)
    except Fail:
        return None
    rest = toks[close + 1:]
    if len(rest) not in (2, 3) or rest[0].text not in COMPARISONS:
        return None
    value = _int(rest[1:])
    terms = [_term(toks[i:j]) for i, j in parts]
    if value is None or not terms or None in terms:
        return None
    weights = [w for w, _ in terms]  # type: ignore[misc]
    names = [n for _, n in terms]  # type: ignore[misc]
    return Sum(variables=names, weights=None if all(w is None for w in weights) else [w or 1 for w in weights],
               op=rest[0].text, value=value)


def _term(toks: list[Token]) -> tuple[int | None, str] | None:
    if len(toks) == 1 and toks[0].kind == "name":
        return None, toks[0].text
    if len(toks) in (3, 4) and toks[-2].text == "*" and toks[-1].kind == "name":
        weight = _int(toks[:-2])
        return None if weight is None else (weight, toks[-1].text)
    return None


def _int(toks: list[Token]) -> int | None:
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


def _in_statement(line: Line, at: int) -> Statement:
    toks = line.tokens
    if toks[0].text == "(":
        parts, close = _args(line, 0)
        forbidden = close + 2 == at and toks[close + 1].text == "not"
        if close + 1 != at and not forbidden:
            raise Fail("a table reads '(A, B) in {(1, 2), (3, 4)}' (or 'not in')", toks[0].start + 1)
        names = [toks[i].text for i, j in parts if j == i + 1 and toks[i].kind == "name"]
        if len(names) != len(parts) or not names:
            raise Fail("a table lists variable names in its first brackets: '(A, B) in {(1, 2)}'", toks[0].start + 1)
        cursor = _Values(line, at + 1)
        rows = cursor.collection("{", "}", lambda: cursor.collection("(", ")", cursor.value))
        cursor.done()
        return Table(variables=names, rows=rows, forbidden=forbidden)
    if not all(t.kind == "name" for t in toks[:at]) or at == 0:
        raise Fail("a declaration lists variable names before 'in': 'A B C in 1..9'; to restrict variables "
                   "write a table: '(A, B) in {(1, 2)}'", toks[0].start + 1)
    cursor = _Values(line, at + 1)
    domain: Union[dict[str, int], list[Any]]
    if cursor.peek() == "{":
        domain = cursor.collection("{", "}", cursor.value)
        size = len(domain)
    else:
        low = cursor.value(number=True)
        cursor.expect("..", "a domain is a range 'LOW..HIGH' or a set '{1, 3, 5}'")
        high = cursor.value(number=True)
        if high < low:
            raise Fail(f"the range {low}..{high} is empty; write the smaller bound first", toks[at + 1].start + 1)
        domain, size = {"min": low, "max": high}, high - low + 1
    cursor.done()
    return Declaration([(t.text, t.start + 1) for t in toks[:at]], domain, size)


class _Values:
    """A cursor over literal values: integers, quoted text, bracketed lists of them."""

    def __init__(self, line: Line, at: int):
        self.line, self.at = line, at

    def peek(self) -> str | None:
        return self.line.tokens[self.at].text if self.at < len(self.line.tokens) else None

    def column(self) -> int:
        toks = self.line.tokens
        return toks[self.at].start + 1 if self.at < len(toks) else len(self.line.text) + 1

    def expect(self, text: str, hint: str) -> None:
        if self.peek() != text:
            raise Fail(f"expected '{text}' here: {hint}", self.column())
        self.at += 1

    def done(self) -> None:
        if self.at < len(self.line.tokens):
            raise Fail(f"unexpected {self.peek()!r} after the end of the statement", self.column())

    def value(self, number: bool = False) -> Any:
        toks = self.line.tokens
        take = 2 if self.peek() == "-" else 1
        found = _int(toks[self.at:self.at + take])
        if found is not None:
            self.at += take
            return found
        if not number and self.peek() is not None and toks[self.at].kind == "text":
            return self._text()
        raise Fail("expected an integer" + ("" if number else " or a text value in double quotes"), self.column())

    def _text(self) -> str:
        token = self.line.tokens[self.at]
        if token.text[0] != '"':
            raise Fail("write text values in double quotes", self.column())
        try:
            value = json.loads(token.text)
        except ValueError as exc:
            raise Fail(f"the text value {token.text[:30]} is not valid: {exc.msg}", self.column()) from None
        self.at += 1
        return value

    def collection(self, open_: str, close: str, item: Any) -> list[Any]:
        self.expect(open_, f"a list of values in '{open_}{close}'")
        items: list[Any] = []
        while self.peek() != close:
            if items:
                self.expect(",", f"separate values with ', ' and end the list with '{close}'")
            items.append(item())
        self.at += 1
        return items
