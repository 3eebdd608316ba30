"""The ``ProposeAndRetract`` node: the model proposes, the solver disposes.

Each round the model proposes values (JSON) for the variables still open;
:func:`find_conflict` names the proposals to retract; they are retracted
(``ctx.emit("retraction", ...)``), the rest are kept, and the model is re-asked
only for the retracted ones, with the reason. After ``max_rounds`` the solver's
own search completes the kept proposals (retracting more, minimally, should
they still admit no solution).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from plait._json import find_json, load_json
from plait.errors import ConfigError
from plait.executors import JsonSchema, Message, Request, SamplingParams
from plait.orchestrator import Node, ProposalSettled, RunContext
from plait.solvers._bridge import CSPResult, in_worker, solve_async
from plait.solvers._compile import compile_all
from plait.solvers._model import CSP
from plait.solvers._retract import Conflict, find_conflict

__all__ = ["Retraction", "Proposal", "ProposeAndRetract"]

PROPOSE_SYSTEM = """\
You propose values for the variables of a constraint problem. Reply with one JSON object mapping each
requested variable to a value from its domain. A solver checks your proposal and tells you which
values it retracted and why; values it kept are fixed.
"""


class Retraction(BaseModel):
    """One retraction: which proposals were taken back, the constraints they broke, and why."""

    round: int
    variables: list[str]
    values: dict[str, Any]
    constraints: list[str]
    reason: str


class Proposal(BaseModel):
    """Outcome: the solution, which values the model supplied and which the solver, and every retraction."""

    result: CSPResult
    from_model: dict[str, Any]
    from_solver: list[str]
    retractions: list[Retraction]
    rounds: int

    @property
    def solution(self) -> dict[str, Any] | None:
        return self.result.solution


class ProposeAndRetract(Node):
    """Model proposes values for ``propose`` (default: every variable), solver retracts conflicts, re-asks."""

    def __init__(self, name: str | None = None, *, propose: list[str] | None = None, max_rounds: int = 3,
                 time_limit: float = 10.0, sampling: SamplingParams | None = None, **policy: Any):
        super().__init__(name or "propose_and_retract", **policy)
        self.propose = propose
        self.max_rounds = max_rounds
        self.time_limit = time_limit
        self.sampling = sampling or SamplingParams(max_tokens=512)

    async def run(self, csp: CSP, problem: str, ctx: RunContext) -> Proposal:
        compile_all(csp)  # an invalid model fails here, before any tokens are spent
        proposable = self.propose or [v.name for v in csp.variables]
        unknown = [p for p in proposable if p not in csp.kinds]
        if unknown:
            raise ConfigError(f"{self.name}: propose names undeclared variable(s) {', '.join(unknown)}")
        kept: dict[str, Any] = {}
        pending, retractions = list(proposable), []
        messages = [Message(role="system", content=PROPOSE_SYSTEM), Message(role="user", content=_brief(csp, problem))]
        rounds = 0
        while pending and rounds < self.max_rounds:
            rounds += 1
            messages.append(Message(role="user", content=f"Propose values for: {', '.join(pending)}."))
            params = self.sampling.model_copy(update={"constraint": JsonSchema(schema=_schema(csp, pending))})
            reply = (await ctx.generate(Request(prompt=tuple(messages), params=params))).text
            messages.append(Message(role="assistant", content=reply))
            current = {**kept, **_canonical(csp, _parse(reply), pending)}
            conflict = await self._conflict(csp, current)
            if conflict is None or not conflict.variables:  # accepted (or the problem is unsat by itself)
                kept, pending = current, [p for p in proposable if p not in current]
                break
            retractions.append(self._retract(ctx, csp, rounds, conflict, current))
            kept = {k: v for k, v in current.items() if k not in conflict.variables}
            pending = [p for p in proposable if p not in kept]
            messages.append(Message(role="user", content=_feedback(csp, conflict, current, kept)))
        result = await solve_async(csp, fixed=kept, timeout=self.time_limit)
        while result.status == "unsat" and kept:  # fallback: retract minimally until the solver can finish
            conflict = await self._conflict(csp, kept)
            if conflict is None or not conflict.variables:
                break
            retractions.append(self._retract(ctx, csp, rounds, conflict, kept, fallback=True))
            kept = {k: v for k, v in kept.items() if k not in conflict.variables}
            result = await solve_async(csp, fixed=kept, timeout=self.time_limit)
        from_solver = [v.name for v in csp.variables if v.name not in kept]
        ctx.emit(ProposalSettled, rounds=rounds, from_model=kept, from_solver=from_solver, status=result.status,
                 solution=result.solution)
        return Proposal(result=result, from_model=kept, from_solver=from_solver, retractions=retractions,
                        rounds=rounds)

    async def _conflict(self, csp: CSP, proposals: dict[str, Any]) -> Conflict | None:
        """The conflict among ``proposals``, searched for at most ``time_limit`` seconds."""
        return await in_worker(lambda stop: find_conflict(csp, proposals, timeout=self.time_limit, stop=stop))

    @staticmethod
    def _retract(ctx: RunContext, csp: CSP, round_no: int, conflict: Conflict, current: dict[str, Any],
                 fallback: bool = False) -> Retraction:
        record = Retraction(round=round_no, variables=list(conflict.variables),
                            values={v: current.get(v) for v in conflict.variables},
                            constraints=[csp.describe(i) for i in conflict.constraints],
                            reason=conflict.reason + (" (fallback before the solver's own search)" if fallback else ""))
        ctx.emit("retraction", **record.model_dump())
        return record


def _brief(csp: CSP, task: str) -> str:
    variables = "\n".join(f"- {v.name}: {_domain_text(v.values)}" for v in csp.variables)
    constraints = "\n".join(f"- {csp.describe(i)}" for i in range(len(csp.constraints)))
    return f"{task}\n\nVariables and domains:\n{variables}\n\nConstraints:\n{constraints}"


def _domain_text(values: list[Any]) -> str:
    if len(values) > 12 and all(isinstance(v, int) for v in values):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values))


def _feedback(csp: CSP, conflict: Conflict, current: dict[str, Any], kept: dict[str, Any]) -> str:
    taken = ", ".join(f"{v}={current.get(v)!r}" for v in conflict.variables)
    broken = "".join(f"\n- {csp.describe(i)}" for i in conflict.constraints)
    fixed = ", ".join(f"{k}={v!r}" for k, v in kept.items()) or "none"
    return f"Retracted {taken}: {conflict.reason}{broken}\nKept (fixed): {fixed}."


def _schema(csp: CSP, names: list[str]) -> dict[str, Any]:
    """One property per requested variable: its domain as an enum, or (a large domain) a bounded integer/string."""
    props = {}
    for var in csp.variables:
        if var.name in names:
            props[var.name] = _value_schema(var.values)
    return {"type": "object", "properties": props, "required": list(names), "additionalProperties": False}


def _value_schema(values: list[Any]) -> dict[str, Any]:
    if len(values) <= 200:
        return {"enum": values}
    if all(isinstance(v, int) for v in values):
        return {"type": "integer", "minimum": min(values), "maximum": max(values)}
    return {"type": "string", "maxLength": max(len(str(v)) for v in values)}


def _canonical(csp: CSP, proposal: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Keep proposals for ``names``; a value equal to a domain value (3.0 for 3) becomes that value."""
    domains = csp.domains
    out = {}
    for name, value in proposal.items():
        if name in names:
            same = isinstance(value, (int, float, str)) and not isinstance(value, bool)
            out[name] = next((d for d in domains[name] if same and d == value), value)
    return out


def _parse(reply: str) -> dict[str, Any]:
    """The model's proposal; an unreadable reply proposes nothing (the solver then fills those in)."""
    try:
        data = load_json(find_json(reply, "{") or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
