"""Fuzzing the safe constraint language: nothing outside the whitelist ever executes.

Expressions are generated from allowed pieces mixed with forbidden ones (calls of
a canary function planted in ``builtins``, attribute access, subscripts, lambdas,
``eval``/``exec``/``open``...). While parsing and evaluating, ``eval``/``exec`` and
non-AST ``compile`` are replaced by tripwires. The properties: a text with any
forbidden piece is rejected with ConstraintSyntaxError; an accepted text never
trips a wire and evaluates to what Python's own arithmetic gives; arbitrary text
only ever raises ConstraintSyntaxError.
"""

import ast
import builtins
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.errors import ConstraintSyntaxError
from plait.solvers import parse_expr

VARS = {"A": "int", "B": "int", "C": "int"}
SAFE_ATOMS = ["A", "B", "C", "0", "1", "7", "-3", "12"]
FORBIDDEN_ATOMS = [
    "plait_canary()", "A.real", "A.__class__", "__import__('builtins').plait_canary()",
    "(lambda: plait_canary())()", "[plait_canary()][0]", "(A, B)[0]", "getattr(A, 'real')",
    "eval('plait_canary()')", "exec('plait_canary()')", "open('/dev/null')", "globals()", "vars()",
    "(plait_canary() if A else B)", "[x for x in (plait_canary(),)][0]", "A ** B", "A / 2", "1.5",
    "__builtins__", "(B := 3)", "~A", "A @ B", "A << 2", "A ** 99", "plait_canary",
]


_WATCHED_EVENTS = {"exec", "import", "open", "os.system", "subprocess.Popen", "ctypes.dlopen", "builtins.input",
                   "object.__getattr__", "object.__setattr__", "socket.connect", "os.exec", "os.spawn"}
_ACTIVE: list = []  # the Tripwire currently armed (audit hooks cannot be removed, so one hook checks this)


def _audit(event, args):
    if _ACTIVE and event in _WATCHED_EVENTS:
        _ACTIVE[-1].hits.append(f"audit:{event}")


sys.addaudithook(_audit)


class Tripwire:
    """Patches eval/exec/compile and arms a Python audit hook (exec, import, open, processes...)."""

    def __init__(self):
        self.hits = []

    def __enter__(self):
        self.saved = {n: getattr(builtins, n) for n in ("eval", "exec", "compile")}
        real_compile = self.saved["compile"]

        def canary(*args, **kwargs):
            self.hits.append("plait_canary")
            return 0

        def wire(name):
            def tripped(*args, **kwargs):
                self.hits.append(name)
                raise AssertionError(f"{name} was called")
            return tripped

        def guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
            if not flags & ast.PyCF_ONLY_AST:
                self.hits.append("compile")
            return real_compile(source, filename, mode, flags, *args, **kwargs)

        builtins.plait_canary = canary
        builtins.eval, builtins.exec, builtins.compile = wire("eval"), wire("exec"), guarded_compile
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc):
        _ACTIVE.remove(self)
        for name, fn in self.saved.items():
            setattr(builtins, name, fn)
        del builtins.plait_canary


def expressions(forbidden: bool):
    atoms = st.sampled_from(SAFE_ATOMS + (FORBIDDEN_ATOMS if forbidden else []))

    def grow(inner):
        binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "//", "%"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})")
        power = atoms.map(lambda e: f"({e}) ** 2")  # nested powers are rejected by design
        calls = st.tuples(st.sampled_from(["abs", "min", "max", "sum"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"abs({t[1][0]})" if t[0] == "abs" else f"{t[0]}([{', '.join(t[1])}])")
        unary = inner.map(lambda e: f"-({e})")
        return binary | power | calls | unary

    terms = st.recursive(atoms, grow, max_leaves=8)
    compare = st.tuples(terms, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), terms).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}")
    return st.recursive(compare, lambda c: st.tuples(c, st.sampled_from(["and", "or"]), c).map(
        lambda t: f"({t[0]}) {t[1]} ({t[2]})") | c.map(lambda e: f"not ({e})"), max_leaves=3)


VALUES = st.fixed_dictionaries({v: st.integers(-20, 20) for v in VARS})
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(expressions(forbidden=True), VALUES)
def test_nothing_outside_the_whitelist_ever_executes(text, values):
    with Tripwire() as wires:
        try:
            expr = parse_expr(text, VARS)
        except ConstraintSyntaxError:
            expr = None
        if expr is not None:
            expr.holds(values)
    assert wires.hits == []
    if any(bad in text for bad in FORBIDDEN_ATOMS):
        assert expr is None, f"accepted a forbidden construct: {text}"


@FUZZ
@given(expressions(forbidden=False), VALUES)
def test_accepted_expressions_agree_with_python_arithmetic(text, values):
    expr = parse_expr(text, VARS)
    try:
        expected = bool(eval(compile(text, "<reference>", "eval"), {"__builtins__": {}}, {  # test oracle only
            **values, "abs": abs, "min": min, "max": max, "sum": sum}))
    except ZeroDivisionError:
        expected = False  # the language defines a division by zero as making the whole condition false
    assert expr.holds(values) is expected


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text_only_ever_raises_constraint_syntax_error(text):
    with Tripwire() as wires:
        try:
            parse_expr(text, VARS)
        except ConstraintSyntaxError:
            pass
    assert wires.hits == []


def test_the_tripwire_catches_what_it_guards():
    # the oracle for the tests above: each guarded path really is seen
    with Tripwire() as wires:
        builtins.plait_canary()
        open(__file__).close()  # noqa: SIM115
        try:
            builtins.eval("1")
        except AssertionError:
            pass
    assert "plait_canary" in wires.hits and "audit:open" in wires.hits and "eval" in wires.hits
