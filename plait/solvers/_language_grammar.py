"""The formulation language as a grammar for constrained decoding (xgrammar EBNF, vLLM's ``grammar`` field).

Decoded under :data:`FORMULATION_GRAMMAR`, a reply is a sequence of
statements that :func:`~plait.solvers.parse_formulation` reads without a
syntax error: the grammar is a strict subset of the language. Spaces are bounded: at
most one around an operator or after a comma, exactly one between names and
around keywords, no blank lines or trailing spaces, so a model cannot loop on
whitespace. (Tight spacing is cheaper: Qwen's tokenizer spends a token on the
space before a digit and on each ", ": ``Q1+1,Q2+2`` is 8 tokens, ``Q1 + 1, Q2 + 2`` 11.) What no context-free grammar can know is left to the parser:
whether a name is declared, a range is empty, a table row has the right width.

Lengths are bounded so a looping model stops early: names of at most
:data:`MAX_NAME` characters (never a Python keyword or ``abs``/``min``/``max``/
``sum``/``True``..., built by :func:`_names`), integers of at most
:data:`MAX_DIGITS` digits with no leading zero, text values of at most
:data:`MAX_TEXT_VALUE` plain characters, and at most 100 items in a list,
50 terms in a sum, 1,000 lines.
"""

from __future__ import annotations

import keyword

__all__ = ["FORMULATION_GRAMMAR", "MAX_NAME", "MAX_DIGITS", "MAX_TEXT_VALUE"]

MAX_NAME = 32
MAX_DIGITS = 8
MAX_TEXT_VALUE = 40
_EXCLUDED = sorted({*keyword.kwlist, "abs", "min", "max", "sum"} - {"_"})
_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_REST = _FIRST + "0123456789_"

_STATEMENTS = r"""
root ::= statement ("\n" statement){0,999} "\n"?
statement ::= comment | declaration | alldifferent | sum_constraint | table | implication | any_of | compare | condition
comment ::= "# " [^\n]{0,100}
declaration ::= name (" " name){0,99} " in " domain
domain ::= integer ".." integer | "{" value (comma value){0,99} "}"
value ::= integer | text
text ::= "\"" [A-Za-z0-9 _.,'\-]{1,MAX_TEXT_VALUE} "\""
alldifferent ::= "alldifferent(" arith (comma arith){1,99} ")"
sum_constraint ::= "sum(" term (comma term){0,99} ")" sp comparison_op sp integer
term ::= name | integer sp "*" sp name
table ::= "(" name (comma name){0,19} ")" (" in " | " not in ") "{" (row (comma row){0,199})? "}"
row ::= "(" value (comma value){0,19} ")"
implication ::= condition sp "->" sp condition
any_of ::= "any(" condition (comma condition){0,19} ")"
compare ::= "compare(" arith sp comparison_op sp arith ")"
condition ::= conjunction (" or " conjunction){0,19}
conjunction ::= negation (" and " negation){0,19}
negation ::= "not " negation | comparison | "(" condition ")"
comparison ::= arith (sp comparison_op sp arith){1,3} | name sp ("==" | "!=") sp text
comparison_op ::= "==" | "!=" | "<=" | ">=" | "<" | ">"
arith ::= product (sp ("+" | "-") sp product){0,49}
product ::= factor (sp ("*" | "//" | "%") sp factor){0,19}
factor ::= "-"? (power | primary)
power ::= (name | unsigned) sp "**" sp [2-8]
primary ::= name | unsigned | "(" arith ")" | "abs(" arith ")" | ("min(" | "max(" | "sum(") arith (comma arith){0,99} ")"
integer ::= "-"? unsigned
unsigned ::= "0" | [1-9] [0-9]{0,MAX_DIGITS_1}
comma ::= "," " "?
sp ::= " "?
"""


def _chars(allowed: set[str] | str) -> str:
    """An EBNF character class of ``allowed`` (letters, digits and '_' only), runs written as ranges."""
    codes, parts = sorted(map(ord, allowed)), []
    start = prev = codes[0]
    for code in [*codes[1:], -1]:
        if code != prev + 1:
            parts.append(chr(start) if start == prev else f"{chr(start)}{'-' if prev > start + 1 else ''}{chr(prev)}")
            start = code
        prev = code
    return "[" + "".join(parts) + "]"


def _names(excluded: list[str], max_len: int) -> str:
    """Rules for ``name``: identifiers of 1..max_len characters starting with a letter, except ``excluded``.

    A trie of the excluded words: at each of its nodes the next character either
    stays in the trie or leaves it for a free tail; a node may end the name
    unless it spells an excluded word.
    """
    prefixes = sorted({w[:i] for w in excluded for i in range(len(w))})
    rule = {p: f"name_{i}" for i, p in enumerate(prefixes)}
    rule[""] = "name"
    lines = []
    for prefix in prefixes:
        inside = sorted({w[len(prefix)] for w in excluded if w.startswith(prefix) and len(w) > len(prefix)})
        alphabet = set(_REST if prefix else _FIRST)
        options = []
        for c in inside:
            nxt = prefix + c
            target = rule.get(nxt)
            if target is None:  # nxt is a whole excluded word and a prefix of none: it must go on
                options.append(f'"{c}" {_chars(_REST)}{{1,{max_len - len(nxt)}}}')
            elif nxt in excluded:
                options.append(f'"{c}" {target}')
            else:
                options.append(f'"{c}" {target}?')
        left = alphabet - set(inside)
        options.append(f"{_chars(left)} {_chars(_REST)}{{0,{max_len - len(prefix) - 1}}}")
        lines.append(f"{rule[prefix]} ::= " + " | ".join(options))
    return "\n".join(lines)


FORMULATION_GRAMMAR = (
    _STATEMENTS.replace("MAX_TEXT_VALUE", str(MAX_TEXT_VALUE)).replace("MAX_DIGITS_1", str(MAX_DIGITS - 1)).strip()
    + "\n" + _names(_EXCLUDED, MAX_NAME) + "\n"
)
"""The formulation language's grammar (xgrammar EBNF): pass it as ``Grammar(grammar=FORMULATION_GRAMMAR)``."""
