"""Random valid CSPs for the language tests: every constraint kind, texts in the grammar's spelling.

Expressions are built from pieces the grammar allows, with tight or spaced
operators at random, so a formatted CSP is also a string the grammar accepts.
"""

from __future__ import annotations

from hypothesis import strategies as st

from plait.solvers import CSP

INT_NAMES = ["A", "B", "C", "Q1", "red", "x_2", "Zebra", "any", "compare"]
TEXT_NAMES = ["Color", "pet"]
TEXTS = ["red", "pall mall", "blue-master", "it's", "O.K."]
OPS = ["==", "!=", "<", "<=", ">", ">="]


def _spaced(draw, op: str) -> str:
    return f" {op} " if draw(st.booleans()) else op


@st.composite
def arith(draw, names: list[str], depth: int = 2) -> str:
    choice = draw(st.integers(0, 6 if depth > 0 else 2))
    if choice == 0:
        return draw(st.sampled_from(names))
    if choice == 1:
        return str(draw(st.integers(0, 10**8 - 1)))
    if choice == 2:
        return f"{draw(st.sampled_from(names))}{_spaced(draw, '**')}{draw(st.integers(2, 8))}"
    if choice == 3:
        op = draw(st.sampled_from(["+", "-", "*", "//", "%"]))
        return f"{draw(arith(names, depth - 1))}{_spaced(draw, op)}{draw(arith(names, depth - 1))}"
    if choice == 4:
        return f"({draw(arith(names, depth - 1))})"
    if choice == 5:
        return f"-{draw(st.sampled_from(names))}"
    fn = draw(st.sampled_from(["abs", "min", "max", "sum"]))
    count = 1 if fn == "abs" else draw(st.integers(1, 3))
    sep = draw(st.sampled_from([",", ", "]))
    return f"{fn}({sep.join(draw(arith(names, depth - 1)) for _ in range(count))})"


@st.composite
def condition(draw, ints: list[str], texts: list[str], depth: int = 1) -> str:
    choice = draw(st.integers(0, 4 if depth > 0 else 1))
    if choice == 0 or not texts and choice == 1:
        return f"{draw(arith(ints))}{_spaced(draw, draw(st.sampled_from(OPS)))}{draw(arith(ints))}"
    if choice == 1:
        op = draw(st.sampled_from(["==", "!="]))
        return f'{draw(st.sampled_from(texts))}{_spaced(draw, op)}"{draw(st.sampled_from(TEXTS))}"'
    if choice == 2:
        return f"not {draw(condition(ints, texts, depth - 1))}"
    if choice == 3:
        return f"({draw(condition(ints, texts, depth - 1))})"
    joiner = draw(st.sampled_from([" and ", " or "]))
    return joiner.join(draw(condition(ints, texts, depth - 1)) for _ in range(draw(st.integers(2, 3))))


@st.composite
def constraint(draw, ints: list[str], texts: list[str]) -> dict:
    kind = draw(st.sampled_from(["all_different", "compare", "expression", "sum", "table", "implies", "any_of"]))
    if kind == "all_different" and len(ints) >= 2:
        return {"kind": kind, "variables": draw(st.lists(st.sampled_from(ints), min_size=2, max_size=4, unique=True))}
    if kind == "compare":
        return {"kind": kind, "left": draw(arith(ints)), "op": draw(st.sampled_from(OPS)), "right": draw(arith(ints))}
    if kind == "sum":
        names = draw(st.lists(st.sampled_from(ints), min_size=1, max_size=4, unique=True))
        weights = draw(st.none() | st.lists(st.integers(-99, 99), min_size=len(names), max_size=len(names)))
        return {"kind": kind, "variables": names, "weights": weights, "op": draw(st.sampled_from(OPS)),
                "value": draw(st.integers(-10**6, 10**6))}
    if kind == "table":
        names = draw(st.lists(st.sampled_from(ints + texts), min_size=1, max_size=3, unique=True))
        cell = {n: st.sampled_from(TEXTS) if n in texts else st.integers(-50, 50) for n in names}
        rows = draw(st.lists(st.tuples(*(cell[n] for n in names)).map(list), max_size=4))
        return {"kind": kind, "variables": names, "rows": rows, "forbidden": draw(st.booleans())}
    if kind == "implies":
        return {"kind": kind, "if": draw(condition(ints, texts)), "then": draw(condition(ints, texts))}
    if kind == "any_of":
        return {"kind": kind, "conditions": draw(st.lists(condition(ints, texts), min_size=1, max_size=3))}
    return {"kind": "expression", "expression": draw(condition(ints, texts))}


@st.composite
def csps(draw) -> CSP:
    ints = draw(st.lists(st.sampled_from(INT_NAMES), min_size=1, max_size=5, unique=True))
    texts = draw(st.lists(st.sampled_from(TEXT_NAMES), max_size=2, unique=True))
    variables = []
    for name in ints:
        if draw(st.booleans()):
            low = draw(st.integers(-20, 20))
            variables.append({"name": name, "domain": {"min": low, "max": low + draw(st.integers(0, 30))}})
        else:
            variables.append({"name": name, "domain": draw(st.lists(st.integers(-99, 99), min_size=1, max_size=5,
                                                                     unique=True))})
    variables += [{"name": n, "domain": draw(st.lists(st.sampled_from(TEXTS), min_size=1, unique=True))}
                  for n in texts]
    order = draw(st.permutations(variables))
    constraints = draw(st.lists(constraint(ints, texts), max_size=6))
    return CSP.model_validate({"variables": order, "constraints": constraints})
