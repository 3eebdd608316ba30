"""Symbolic solvers: CSP models, a safe constraint parser, repair and retraction.

* :class:`CSP` and its constraint kinds: the finite-domain problem model;
* :func:`parse_expr`: the safe constraint language (``ast`` whitelist, compiled to closures);
* :func:`solve` / :func:`solve_async` and the :class:`SolveCSP` node: python-constraint2 search;
* :class:`Formulate` (LLM to CSP with repair) and :class:`Explain` (solution to prose);
* :func:`parse_formulation` / :func:`format_formulation`: the compact formulation language, its grammar
  :data:`FORMULATION_GRAMMAR` for constrained decoding and worked examples :data:`FORMULATION_EXAMPLES`;
* :class:`ProposeAndRetract`: the model proposes values, the solver retracts exactly the conflicting ones.
"""

from plait.solvers._bridge import CSPResult, solve, solve_async
from plait.solvers._formulate import Explain, Formulate, Formulation, FormulationRound
from plait.solvers._expr import Expr, parse_expr
from plait.solvers._language import format_formulation, parse_formulation
from plait.solvers._language_examples import FORMULATION_EXAMPLES, FormulationExample
from plait.solvers._language_grammar import FORMULATION_GRAMMAR
from plait.solvers._model import CSP, AllDifferent, AnyOf, Compare, Expression, Implies, IntRange, Sum, Table, Variable
from plait.solvers._prompts import FEW_SHOT, FewShot
from plait.solvers._propose_node import Proposal, ProposeAndRetract, Retraction
from plait.solvers._retract import Conflict, find_conflict
from plait.solvers._solve_node import SolveCSP

__all__ = [
    "CSP", "Variable", "IntRange", "AllDifferent", "Compare", "Expression", "Sum", "Table", "Implies", "AnyOf",
    "Expr", "parse_expr", "parse_formulation", "format_formulation", "FORMULATION_GRAMMAR", "FORMULATION_EXAMPLES",
    "FormulationExample", "CSPResult", "solve", "solve_async", "SolveCSP",
    "Formulate", "Formulation", "FormulationRound", "Explain", "FewShot", "FEW_SHOT", "ProposeAndRetract", "Proposal", "Retraction", "Conflict", "find_conflict",
]
