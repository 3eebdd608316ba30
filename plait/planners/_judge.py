"""LLMJudge: score a fan-out candidate with a model call (for BestOfN)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plait._deprecation import refuse_unknown, renamed_keyword
from plait.errors import ConfigError
from plait.executors._base import SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._models import check_model_name
from plait.planners._aggregators import Candidate
from plait.planners._chain import ChainStep
from plait.planners._parsers import NumberParser, Parser
from plait.planners._template import TemplateSource

__all__ = ["LLMJudge"]


class LLMJudge:
    """Scores a candidate by asking the model; use as ``BestOfN(LLMJudge("...{candidate}..."))``.

    The template must contain ``{candidate}`` (the sample's text) and may use
    any input of the fan-out (``{question}``...). The reply is parsed by
    ``parser`` (a number by default); higher is better. A ready
    :class:`ChainStep` (with a ``{candidate}`` placeholder) may be given instead;
    ``to_score`` maps its parsed reply to a number (``{"yes": 1, "no": 0}.get``).
    ``model``: the run's backend that judges (None: the step's ``model``, else the fan-out's).
    """

    def __init__(self, template: TemplateSource | ChainStep, parser: Parser | None = None, *,
                 sampling: SamplingParams | None = None, max_reasks: int = 1,
                 to_score: Callable[[Any], float] = float, model: str | None = None, **renamed: Any):
        sampling = renamed_keyword("LLMJudge", renamed, "params", "sampling", sampling)
        refuse_unknown("LLMJudge", renamed)
        if isinstance(template, ChainStep):  # a judge step built elsewhere (its own parser and sampling)
            self.step = template
        else:
            self.step = ChainStep(template, parser or NumberParser(float),
                                  sampling=sampling or SamplingParams(max_tokens=8), max_reasks=max_reasks, name="judge")
        self.to_score = to_score
        self.model = check_model_name(model, "judge") or self.step.model
        if "candidate" not in self.step.template.variables:
            found = ", ".join("{%s}" % v for v in self.step.template.variables) or "none"
            raise ConfigError(f"an LLMJudge template needs a {{candidate}} placeholder where the sample's text goes "
                              f"(its placeholders: {found})")

    def models_used(self) -> set[str]:
        """The backend name this judge asks for, if any (a run checks it before it starts)."""
        return {self.model} if self.model else set()

    async def score(self, ctx: RunContext, candidate: Candidate, inputs: dict[str, Any]) -> float:
        values = {k: v for k, v in inputs.items() if k in self.step.template.variables}
        values["candidate"] = candidate.text
        return float(self.to_score((await self.step.ask(ctx.using(self.model), values)).value))
