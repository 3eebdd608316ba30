"""Acceptance tests for a :class:`~plait.planners.Cascade`: when is a cheaper tier's answer good enough?

An acceptance test looks at a tier's output and returns None to accept it or
a one-line reason to escalate to the next tier; ``answer`` turns the accepted
output into the cascade's value (a vote's winner, a parsed number). A tier
that raises :class:`~plait.ParseError` or :class:`~plait.errors.VoteError`
(its reply never parsed, too few samples succeeded) is escalated as well,
without asking the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait.errors import ConfigError, ParseError
from plait.planners._fanout import VoteResult
from plait.planners._parsers import Parser

__all__ = ["Acceptance", "agreement", "predicate", "consistent", "parses", "as_acceptance"]


class Acceptance:
    """Base class: override :meth:`check` (and :meth:`answer` when the value is not the output itself)."""

    def check(self, output: Any) -> str | None:
        """None to accept ``output``; else why it is not good enough (one line)."""
        raise NotImplementedError

    def answer(self, output: Any) -> Any:
        """The cascade's value for an output (the output itself by default)."""
        return output

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Agreement(Acceptance):
    def __init__(self, threshold: float):
        if not 0 < threshold <= 1:
            raise ConfigError(f"agreement threshold must be in (0, 1], got {threshold!r}")
        self.threshold = threshold

    def check(self, output: Any) -> str | None:
        if not isinstance(output, VoteResult):
            raise ConfigError(f"agreement({self.threshold}) reads a vote, but the tier returned "
                              f"{type(output).__name__}; make the tier a FanOut (without winner_only=True)")
        if output.agreement >= self.threshold:
            return None
        return f"vote agreement {output.agreement:.2f} is below {self.threshold} ({output.distribution})"

    def answer(self, output: VoteResult) -> Any:
        return output.winner

    def __repr__(self) -> str:
        return f"agreement({self.threshold})"


def agreement(threshold: float) -> Acceptance:
    """Accept a FanOut's vote when its winner's share of the votes is at least ``threshold``; the value is the winner.

    Self-consistency's agreement is a good confidence signal: a small model
    that agrees with itself on 4 of 5 samples is usually right.
    """
    return _Agreement(threshold)


class _Predicate(Acceptance):
    def __init__(self, fn: Callable[[Any], bool], reason: str | None):
        if not callable(fn):
            raise ConfigError(f"predicate() needs a function output -> bool, got {fn!r}")
        self.fn, self.reason = fn, reason or f"{getattr(fn, '__name__', 'the predicate')} rejected the answer"

    def check(self, output: Any) -> str | None:
        verdict = self.fn(output)
        if not isinstance(verdict, bool):
            raise ConfigError(f"acceptance predicate {getattr(self.fn, '__name__', self.fn)!r} returned "
                              f"{type(verdict).__name__}; return True (accept) or False (escalate)")
        return None if verdict else self.reason


def predicate(fn: Callable[[Any], bool], reason: str | None = None) -> Acceptance:
    """Accept when ``fn(output)`` is True; ``reason`` says why not otherwise. A plain function passed as
    ``accept=`` is taken as this."""
    return _Predicate(fn, reason)


class _Consistent(Acceptance):
    def __init__(self, check: Any):
        if not (callable(check) or callable(getattr(check, "violations", None))):
            raise ConfigError(f"consistent() needs a CSP or a function output -> list of problems, got {check!r}")
        self.checker = check

    def check(self, output: Any) -> str | None:
        if callable(getattr(self.checker, "violations", None)):
            if not isinstance(output, dict):
                raise ConfigError(f"consistent(CSP) reads an assignment dict, but the tier returned "
                                  f"{type(output).__name__}")
            domains = self.checker.domains
            problems = [f"{name} is not assigned" for name in domains if name not in output]
            problems += [f"{name}={output[name]!r} is outside its domain" for name in domains
                         if name in output and output[name] not in domains[name]]
            problems += [self.checker.describe(i) + " is broken" for i in self.checker.violations(output)]
        else:
            problems = list(self.checker(output) or [])
        if not problems:
            return None
        shown = "; ".join(str(p) for p in problems[:3])
        return f"the answer is inconsistent: {shown}" + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")


def consistent(check: Any) -> Acceptance:
    """Accept when a solver finds nothing wrong: ``check`` is a CSP (the output, an assignment, must break
    none of its constraints) or a function ``output -> list of problems`` (empty: consistent)."""
    return _Consistent(check)


class _Parses(Acceptance):
    def __init__(self, parser: Parser):
        if not isinstance(parser, Parser):
            raise ConfigError(f"parses() needs a Parser (NumberParser, ModelParser...), got {parser!r}")
        self.parser = parser

    def check(self, output: Any) -> str | None:
        try:
            self.parser.parse(str(output))
        except ParseError as exc:
            return f"the answer does not parse: {exc}"
        return None

    def answer(self, output: Any) -> Any:
        return self.parser.parse(str(output))


def parses(parser: Parser) -> Acceptance:
    """Accept a text output that ``parser`` can read; the value is what it parsed."""
    return _Parses(parser)


def as_acceptance(accept: Acceptance | Callable[[Any], bool]) -> Acceptance:
    """``accept`` as an Acceptance: a plain function is a :func:`predicate`."""
    if isinstance(accept, Acceptance):
        return accept
    if callable(accept):
        return predicate(accept)
    raise ConfigError(f"accept must be an acceptance test (agreement(0.6), parses(parser), consistent(csp), "
                      f"predicate(fn)) or a function output -> bool, got {accept!r}")
