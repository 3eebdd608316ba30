"""The formulation language as a grammar for constrained decoding (xgrammar EBNF, vLLM's ``grammar`` field).

Decoded under :data:`FORMULATION_GRAMMAR`, a reply is a sequence of
statements that :func:`~plait.solvers.parse_formulation` reads without a
syntax error. Spaces are fixed: an operator, ``->`` and a comma are written
either tight or with one space on each side (``A+B``, ``A + B``, ``A == B``,
``A==B``; a comma also as ``, ``), exactly one space between names and around
keywords, no blank lines or trailing spaces, so a model cannot loop on
whitespace. Names have at most :data:`MAX_NAME` characters and integers at
most :data:`MAX_DIGITS` digits with no leading zero.

The grammar is shaped by what xgrammar's token masks cost against Qwen2.5's
151,936-token vocabulary (``benchmarks/grammar_cost.py``; the earlier grammar
took 6 to 12 s to compile and 34 s of mask time over the 1,219 tokens of the
worked examples, up to 1.6 s for one token, which is how 5 items once took
808 s on the engine):

* every space is part of an operator's literal (``" == " | "=="``), never an
  optional ``" "?`` of its own: a rule that may end on an optional space
  leaves almost every token "uncertain" for xgrammar, checked one by one at
  each step (150 ms after every ``==``);
* lists, lines, comments and text values are unbounded (``*``, ``+``): a
  bounded repetition of a rule (``{0,99}``) or of a character class
  (``{0,100}``) is expanded into as many states, each with its own masks.
  ``max_tokens`` ends a looping reply, and the parser's limits
  (:mod:`plait.solvers._limits`) refuse what is too large;
* names are any identifier: Python keywords and ``abs``/``min``/``max``/
  ``sum`` used as names are refused by the parser with their line and
  column, not by a trie of excluded words (half of the compile time).

So the grammar is a superset of what parses in exactly these ways (a keyword
used as a name, a size over a limit), besides what no context-free grammar
can know: whether a name is declared, a range is empty, a table row has the
right width. Measured after: 1 to 2 s to compile, 1.2 s of mask time over
the same tokens (0.5 ms for the median token), at most about 6 ms for one.
"""

from __future__ import annotations

__all__ = ["FORMULATION_GRAMMAR", "MAX_NAME", "MAX_DIGITS"]

MAX_NAME = 32
MAX_DIGITS = 8


def _spaced(*ops: str) -> str:
    """An operator written tight or with one space on each side, every spelling one literal."""
    return "(" + " | ".join(f'"{op}" | " {op} "' for op in ops) + ")"


_RULES = r"""
root ::= statement ("\n" statement)* "\n"?
statement ::= comment | declaration | alldifferent | sum_constraint | table | any_of | compare | condition (ARROW condition)?
comment ::= "# " [^\n]*
declaration ::= name (" " name)* " in " domain
domain ::= integer ".." integer | "{" integer (comma integer)* "}" | "{" text (comma text)* "}"
value ::= integer | text
text ::= "\"" [A-Za-z0-9 _.,'\-]+ "\""
alldifferent ::= "alldifferent(" arith (comma arith)+ ")"
sum_constraint ::= "sum(" term (comma term)* ")" COMPARISON integer
term ::= name | integer TIMES name
table ::= "(" name (comma name)* ")" (" in " | " not in ") "{" (row (comma row)*)? "}"
row ::= "(" value (comma value)* ")"
any_of ::= "any(" condition (comma condition)* ")"
compare ::= "compare(" arith COMPARISON arith ")"
condition ::= conjunction (" or " conjunction)*
conjunction ::= negation (" and " negation)*
negation ::= "not " negation | comparison | "(" condition ")"
comparison ::= arith (COMPARISON arith)+ | name EQUALITY text
arith ::= product (PLUS_MINUS product)*
product ::= factor (MULTIPLY factor)*
factor ::= "-"? ((name | unsigned) (POWER [2-8])? | group)
group ::= "(" arith ")" | "abs(" arith ")" | ("min(" | "max(" | "sum(") arith (comma arith)* ")"
integer ::= "-"? unsigned
unsigned ::= "0" | [1-9] [0-9]{0,MAX_DIGITS_1}
comma ::= "," | ", "
name ::= [A-Za-z] [A-Za-z0-9_]{0,MAX_NAME_1}
"""

_OPERATORS = {
    "ARROW": _spaced("->"), "COMPARISON": _spaced("==", "!=", "<=", ">=", "<", ">"), "EQUALITY": _spaced("==", "!="),
    "PLUS_MINUS": _spaced("+", "-"), "MULTIPLY": _spaced("*", "//", "%"), "TIMES": _spaced("*"),
    "POWER": _spaced("**"), "MAX_DIGITS_1": str(MAX_DIGITS - 1), "MAX_NAME_1": str(MAX_NAME - 1),
}


def _grammar() -> str:
    text = _RULES
    for placeholder, spelled in _OPERATORS.items():
        text = text.replace(placeholder, spelled)
    return text.strip() + "\n"


FORMULATION_GRAMMAR = _grammar()
"""The formulation language's grammar (xgrammar EBNF): pass it as ``Grammar(grammar=FORMULATION_GRAMMAR)``."""
