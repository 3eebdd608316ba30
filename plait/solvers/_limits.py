"""Size limits of a CSP: what a model (or a user) may write before the solver refuses it as ``invalid``.

A constraint problem is model output, so every dimension the solver's work
grows with is capped; each cap is far above any puzzle (N-Queens 200 has
19,900 constraints; a Sudoku 81 variables of 9 values) and low enough that
one step between two clock checks stays small, so a time limit holds:

* ``MAX_VARIABLES`` variables, ``MAX_DOMAIN`` values in one domain,
  ``MAX_TOTAL_VALUES`` over all domains;
* ``MAX_VALUE``: the largest magnitude of any integer (domain values, range
  bounds, sum targets and weights, table cells, literals in expressions);
  ``MAX_TEXT`` characters for a text value;
* ``MAX_CONSTRAINTS`` constraints, and ``MAX_TOTAL_SIZE`` for all of them
  together: characters of constraint text plus entries of constraint lists
  (variables, weights, table cells);
* per expression (:mod:`plait.solvers._expr`): ``MAX_EXPR_CHARS`` characters,
  ``MAX_EXPR_NODES`` syntax nodes, ``MAX_DEPTH`` levels, a literal exponent of
  at most ``MAX_POWER``, and no intermediate integer above ``MAX_BITS`` bits
  (bounded statically, assuming every variable may reach ``MAX_VALUE``).

The validators raise ``ValueError`` naming the limit (pydantic turns it into a
``ValidationError``; the solver nodes report ``invalid``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_VARIABLES", "MAX_DOMAIN", "MAX_TOTAL_VALUES", "MAX_VALUE", "MAX_TEXT", "MAX_CONSTRAINTS",
    "MAX_TOTAL_SIZE", "MAX_EXPR_CHARS", "MAX_EXPR_NODES", "MAX_DEPTH", "MAX_POWER", "MAX_BITS",
    "check_value", "check_values", "show_int",
]

MAX_VARIABLES = 5_000
MAX_DOMAIN = 100_000
MAX_TOTAL_VALUES = 2_000_000
MAX_VALUE = 10**12
MAX_TEXT = 200
MAX_CONSTRAINTS = 20_000
MAX_TOTAL_SIZE = 1_000_000
MAX_EXPR_CHARS = 4_000
MAX_EXPR_NODES = 600
MAX_DEPTH = 60
MAX_POWER = 8
MAX_BITS = 4_096


def show_int(value: int) -> str:
    """An integer for an error message, without printing thousands of digits."""
    if abs(value) < 10**15:
        return str(value)
    return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"


def check_value(value: Any, where: str) -> None:
    """Raise ``ValueError`` when an integer or text value exceeds ``MAX_VALUE`` / ``MAX_TEXT``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE:
        raise ValueError(f"{where} {show_int(value)} is outside -{MAX_VALUE}..{MAX_VALUE} (the limit MAX_VALUE "
                         "= 10**12); use smaller numbers")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"{where} {value[:20]!r}... is {len(value)} characters long; the limit MAX_TEXT is "
                         f"{MAX_TEXT}")


def check_values(values: Any, where: str) -> None:
    """:func:`check_value` for each of ``values`` (the first offender is named)."""
    for value in values:
        check_value(value, where)
