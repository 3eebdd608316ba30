"""The safe constraint language: text such as ``abs(Q1 - Q2) != 1`` compiled to closures.

Constraint text comes from a model, so it is never handed to ``eval``/``exec``
(nor to python-constraint's own string parser, which compiles Python). It is
parsed with :func:`ast.parse` and every node is checked against a whitelist:

* names of declared variables (never dunder names, never builtins);
* integer literals (``|n| <= 10**12``) and short string literals (only as
  operands of ``==``/``!=``, to compare string-domain variables);
* ``+ - * // %``, unary ``- +``, ``**`` with a literal exponent of at most 8;
* comparisons ``== != < <= > >=`` (chains allowed), ``and``, ``or``, ``not``;
* calls of ``abs``, ``min``, ``max``, ``sum`` (positional arguments or one
  list/tuple literal).

Anything else (attributes, subscripts, other calls, lambdas, comprehensions,
f-strings, walrus...) raises :class:`~plait.errors.ConstraintSyntaxError`
naming the construct. The checked tree is compiled into nested closures that
read variable values from a tuple, so nothing outside the whitelist can run.
Division or modulo by zero makes the expression false (no assignment
satisfies it) instead of raising. Evaluation is bounded: besides the limits on
length, syntax nodes and depth, every intermediate integer's size is bounded
statically (products add bit lengths, a power multiplies them, assuming each
variable may reach ``MAX_VALUE``), and an expression that could exceed
``MAX_BITS`` bits is refused, so no assignment makes one evaluation slow.
"""

from __future__ import annotations

import ast
import dataclasses
import heapq
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from plait.errors import ConstraintSyntaxError
from plait.solvers._limits import MAX_BITS, MAX_DEPTH, MAX_EXPR_CHARS, MAX_EXPR_NODES, MAX_POWER, MAX_TEXT, MAX_VALUE

__all__ = ["Expr", "parse_expr", "MAX_EXPR_CHARS", "MAX_EXPR_NODES", "MAX_LITERAL", "MAX_POWER", "MAX_BITS"]

MAX_LITERAL = MAX_VALUE
MAX_STRING = MAX_TEXT
_VALUE_BITS = MAX_VALUE.bit_length()

_Eval = Callable[[tuple], Any]

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_FUNCS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max, "sum": sum}
_ALLOWED = "declared variable names, integer literals, + - * // % ** (small literal exponent), comparisons, " \
    "and/or/not, abs/min/max/sum"
_DESCRIBE = {
    ast.Attribute: "attribute access (x.y)", ast.Subscript: "subscripts (x[i])", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.JoinedStr: "f-strings", ast.NamedExpr: "assignment (:=)",
    ast.IfExp: "conditional expressions (a if c else b)", ast.Dict: "dict literals", ast.Set: "set literals",
    ast.Starred: "starred arguments", ast.Await: "await", ast.Yield: "yield", ast.Div: "true division (/); use //",
    ast.MatMult: "matrix multiplication (@)", ast.BitAnd: "bitwise operators", ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators", ast.LShift: "shifts", ast.RShift: "shifts", ast.Invert: "bitwise not (~)",
    ast.In: "membership tests (in); use a table constraint", ast.NotIn: "membership tests (not in)",
    ast.Is: "identity tests (is)", ast.IsNot: "identity tests (is not)",
}


class _DivByZero(Exception):
    """Raised inside evaluation; the expression then counts as false."""


@dataclasses.dataclass(frozen=True)
class Expr:
    """A checked, compiled constraint expression.

    ``variables`` lists the variables it reads, in first-use order; ``__call__``
    takes their values positionally in that order (the calling convention of
    python-constraint's function constraints).
    """

    text: str
    variables: tuple[str, ...]
    is_boolean: bool
    _fn: _Eval = dataclasses.field(repr=False, compare=False)

    def __call__(self, *values: Any) -> Any:
        try:
            return self._fn(values)
        except _DivByZero:
            return False

    def holds(self, assignment: Mapping[str, Any]) -> bool:
        """Truth value under a full assignment of this expression's variables."""
        return bool(self(*(assignment[v] for v in self.variables)))


def parse_expr(text: str, variables: Mapping[str, str] | Iterable[str], *, boolean: bool = True) -> Expr:
    """Check ``text`` against the whitelist and compile it.

    ``variables`` maps declared names to their kind (``"int"`` or ``"str"``),
    or is a plain iterable of int variable names. With ``boolean=True`` the
    expression must be a condition (a comparison or a boolean combination).
    """
    if not isinstance(text, str):
        raise ConstraintSyntaxError(f"a constraint must be text, got {type(text).__name__}", str(text))
    if len(text) > MAX_EXPR_CHARS:
        raise ConstraintSyntaxError(f"constraint is {len(text)} characters long; the limit is {MAX_EXPR_CHARS}", text)
    kinds = dict(variables) if isinstance(variables, Mapping) else dict.fromkeys(variables, "int")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConstraintSyntaxError(f"constraint {text!r} is not a valid expression: {exc.msg}", text) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, pathological nesting
        raise ConstraintSyntaxError(f"constraint {text!r} cannot be parsed: {exc}", text) from None
    if sum(1 for _ in ast.walk(tree)) > MAX_EXPR_NODES:
        raise ConstraintSyntaxError(f"constraint {text!r} is too large (over {MAX_EXPR_NODES} syntax nodes)", text)
    compiler = _Compiler(text, kinds)
    fn, kind = compiler.compile(tree.body, 0)
    compiler.bits(tree.body)
    if boolean and kind != "bool":
        raise ConstraintSyntaxError(
            f"constraint {text!r} is not a condition; write a comparison such as 'A + B == C'", text)
    return Expr(text, tuple(compiler.order), kind == "bool", fn)


class _Compiler:
    """Walks a checked tree once, producing a closure per node and the node's kind (int, str, bool)."""

    def __init__(self, text: str, kinds: dict[str, str]):
        self.text = text
        self.kinds = kinds
        self.order: list[str] = []

    def fail(self, what: str) -> ConstraintSyntaxError:
        return ConstraintSyntaxError(f"constraint {self.text!r}: {what} is not allowed (allowed: {_ALLOWED})",
                                     self.text)

    def compile(self, node: ast.AST, depth: int) -> tuple[_Eval, str]:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(_DESCRIBE.get(type(node), f"the construct {type(node).__name__!r}"))
        return method(node, depth + 1)

    def numeric(self, node: ast.AST, depth: int, where: str) -> _Eval:
        fn, kind = self.compile(node, depth)
        if kind == "str":
            raise self.fail(f"text values in {where} (text can only be compared with == or !=)")
        return fn

    def bits(self, node: ast.AST) -> int:
        """An upper bound on the bit length of what ``node`` evaluates to; refuses one above ``MAX_BITS``."""
        if isinstance(node, ast.Name):
            found = _VALUE_BITS
        elif isinstance(node, ast.Constant):
            found = node.value.bit_length() if isinstance(node.value, int) else 0
        elif isinstance(node, ast.UnaryOp):
            found = self.bits(node.operand)
        elif isinstance(node, ast.BinOp):
            left, right = self.bits(node.left), self.bits(node.right)
            if isinstance(node.op, (ast.Add, ast.Sub)):
                found = max(left, right) + 1
            elif isinstance(node.op, ast.Mult):
                found = left + right
            elif isinstance(node.op, ast.Pow):
                found = left * node.right.value  # type: ignore[attr-defined]  # checked above: an integer literal
            else:  # // keeps the dividend's size at most, % the divisor's
                found = left if isinstance(node.op, ast.FloorDiv) else right
        elif isinstance(node, ast.Call):
            args = node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)) \
                else node.args
            sizes = [self.bits(a) for a in args]
            found = max(sizes) + (len(sizes).bit_length() if node.func.id == "sum" else 0)  # type: ignore[attr-defined]
        else:  # comparisons and boolean operators: check their operands, yield a truth value
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.bits(child)
            found = 1
        if found > MAX_BITS:
            raise ConstraintSyntaxError(
                f"constraint {self.text!r} can produce integers of {found} bits (variables are assumed to reach "
                f"{MAX_VALUE}); the limit MAX_BITS is {MAX_BITS}: keep products and powers smaller", self.text)
        return found

    # -- leaves ------------------------------------------------------------------
    def _Name(self, node: ast.Name, depth: int) -> tuple[_Eval, str]:
        name = node.id
        if name.startswith("__"):
            raise self.fail(f"the dunder name {name!r}")
        if name not in self.kinds:
            if name in _FUNCS:
                raise self.fail(f"using {name!r} other than as a call")
            raise ConstraintSyntaxError(
                f"constraint {self.text!r} uses unknown variable {name!r}; declare it or use one of: "
                f"{', '.join(heapq.nsmallest(30, self.kinds)) or '(no variables declared)'}", self.text)
        if name not in self.order:
            self.order.append(name)
        index = self.order.index(name)
        return (lambda env: env[index]), ("str" if self.kinds[name] == "str" else "int")

    def _Constant(self, node: ast.Constant, depth: int) -> tuple[_Eval, str]:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.fail(f"the literal {value!r} (only integers and short strings)")
        if isinstance(value, int) and abs(value) > MAX_LITERAL:
            raise self.fail(f"an integer literal larger than {MAX_LITERAL}")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise self.fail(f"a string literal longer than {MAX_STRING} characters")
        return (lambda env: value), ("str" if isinstance(value, str) else "int")

    # -- arithmetic --------------------------------------------------------------
    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> tuple[_Eval, str]:
        if isinstance(node.op, ast.Not):
            inner, _ = self.compile(node.operand, depth)
            return (lambda env: not inner(env)), "bool"
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise self.fail(_DESCRIBE.get(type(node.op), type(node.op).__name__))
        inner = self.numeric(node.operand, depth, "arithmetic")
        if isinstance(node.op, ast.USub):
            return (lambda env: -inner(env)), "int"
        return inner, "int"

    def _BinOp(self, node: ast.BinOp, depth: int) -> tuple[_Eval, str]:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(_DESCRIBE.get(type(node.op), f"the operator {type(node.op).__name__}"))
        if isinstance(node.op, ast.Pow):
            exp = node.right
            literal = isinstance(exp, ast.Constant) and type(exp.value) is int and 0 <= exp.value <= MAX_POWER
            if not literal:
                raise self.fail(f"'**' with an exponent other than an integer literal from 0 to {MAX_POWER}")
            if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in ast.walk(node.left)):
                raise self.fail("nested powers (a power inside the base of '**')")
        left = self.numeric(node.left, depth, "arithmetic")
        right = self.numeric(node.right, depth, "arithmetic")
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)):
            def divide(env: tuple, op=op) -> Any:
                divisor = right(env)
                if divisor == 0:
                    raise _DivByZero
                return op(left(env), divisor)
            return divide, "int"
        return (lambda env: op(left(env), right(env))), "int"

    def _Call(self, node: ast.Call, depth: int) -> tuple[_Eval, str]:
        func = node.func
        if not isinstance(func, ast.Name) or func.id not in _FUNCS:
            shown = func.id if isinstance(func, ast.Name) else ast.unparse(func)[:40]
            raise self.fail(f"calling {shown!r} (only abs, min, max, sum may be called)")
        if node.keywords:
            raise self.fail(f"keyword arguments to {func.id}()")
        args = node.args
        if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)) and func.id != "abs":
            args = args[0].elts
        if not args or (func.id == "abs" and len(args) != 1):
            raise self.fail(f"{func.id}() with {len(args)} argument(s)")
        parts = [self.numeric(a, depth, f"{func.id}()") for a in args]
        impl = _FUNCS[func.id]
        if func.id == "abs":
            (only,) = parts
            return (lambda env: abs(only(env))), "int"
        return (lambda env: impl([p(env) for p in parts])), "int"

    # -- conditions --------------------------------------------------------------
    def _Compare(self, node: ast.Compare, depth: int) -> tuple[_Eval, str]:
        for op_node in node.ops:
            if type(op_node) not in _CMPOPS:
                raise self.fail(_DESCRIBE.get(type(op_node), type(op_node).__name__))
        operands = [self.compile(node.left, depth)]
        operands += [self.compile(c, depth) for c in node.comparators]
        steps = []
        for i, op_node in enumerate(node.ops):
            op = _CMPOPS[type(op_node)]
            (_, lkind), (_, rkind) = operands[i], operands[i + 1]
            ordering = not isinstance(op_node, (ast.Eq, ast.NotEq))
            if "str" in (lkind, rkind) and (ordering or {lkind, rkind} != {"str"}):
                raise self.fail("comparing text with a number or ordering text (text allows only == and !=)")
            steps.append((op, operands[i][0], operands[i + 1][0]))
        if len(steps) == 1:
            ((op, a, b),) = steps
            return (lambda env: op(a(env), b(env))), "bool"
        return (lambda env: all(op(a(env), b(env)) for op, a, b in steps)), "bool"

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> tuple[_Eval, str]:
        parts = [self.compile(v, depth)[0] for v in node.values]
        if isinstance(node.op, ast.And):
            return (lambda env: all(p(env) for p in parts)), "bool"
        return (lambda env: any(p(env) for p in parts)), "bool"

    def _List(self, node: ast.AST, depth: int) -> tuple[_Eval, str]:
        raise self.fail("a list or tuple outside sum()/min()/max()")

    _Tuple = _List
