"""ChainStep: one templated model call parsed into a typed value.

The template's placeholders are the node's inputs (typed through ``inputs``,
``str`` by default), so a ChainStep wires into a graph like any function
node. A reply that does not parse is shown back to the model with the error,
at most ``max_reasks`` times; then :class:`~plait.ParseError` is raised with
the raw text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait._deprecation import renamed_keyword
from plait.errors import ConfigError
from plait.executors._base import Backend, Request, SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._node import Node, Param, Signature
from plait.planners._asking import Asked, ask, constrained
from plait.planners._budget_split import check_budget, explicit_max_tokens
from plait.planners._parsers import Parser, TextParser
from plait.planners._template import Template, TemplateSource

__all__ = ["ChainStep"]


class ChainStep(Node):
    """A node that renders a prompt template, calls the model once and parses the reply.

    Example::

        solve = ChainStep("Q: {question}\\nA: the answer is", NumberParser(int),
                          sampling=SamplingParams(max_tokens=64), name="solve")
        g.add(solve)   # input: question (str); output: int

    ``inputs`` maps placeholder names to types (others are ``str``) and may
    give defaults via ``defaults``. ``sampling`` are the sampling options
    (the parser's constraint is added when the backend supports it).
    ``budget``: tokens for the whole step (prompt, reply and re-asks) instead
    of ``max_tokens``: the reply may use all the budget its prompt leaves.
    """

    def __init__(
        self,
        template: TemplateSource | Template,
        parser: Parser | None = None,
        *,
        inputs: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
        sampling: SamplingParams | None = None,
        max_reasks: int = 2,
        budget: int | None = None,
        name: str | None = None,
        **policy: Any,
    ):
        self.template = template if isinstance(template, Template) else Template(template)
        self.parser = parser or TextParser()
        self.inputs = dict(inputs or {})
        self.defaults = dict(defaults or {})
        self.sampling = renamed_keyword("ChainStep", policy, "params", "sampling", sampling) or SamplingParams()
        if max_reasks < 0:
            raise ConfigError(f"max_reasks must be >= 0, got {max_reasks}")
        self.max_reasks = max_reasks
        unknown = sorted(set(self.inputs) - set(self.template.variables))
        if unknown:
            raise ConfigError(f"ChainStep inputs {unknown} are not placeholders of the template "
                              f"(placeholders: {self.template.variables})")
        super().__init__(name, **policy)
        self.budget = check_budget(f"ChainStep {self.name!r}", budget)
        if self.budget is not None and explicit_max_tokens(self.sampling):
            raise ConfigError(f"ChainStep {self.name!r}: give budget= (tokens for prompt and reply) or sampling "
                              f"max_tokens={self.sampling.max_tokens}, not both")

    def signature(self) -> Signature:
        params = {v: Param(v, self.inputs.get(v, str), self.defaults.get(v, Param(v).default))
                  for v in self.template.variables}
        return Signature(params, self.parser.output_type, "ctx")

    def request(self, values: Mapping[str, Any], backend: Backend | None = None, **sampling: Any) -> Request:
        """The request this step sends for ``values`` (``sampling`` overrides SamplingParams fields)."""
        params = self.sampling.model_copy(update=sampling) if sampling else self.sampling
        params = SamplingParams.model_validate(params.model_dump(by_alias=True))
        if backend is not None:
            params = constrained(params, self.parser, backend)
        return Request(prompt=self.template.render({**self.defaults, **values}), params=params)

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        return (await self.ask(ctx, kwargs)).value

    async def ask(self, ctx: RunContext, values: Mapping[str, Any]) -> Asked:
        """Run this step inside another node: one call (plus re-asks) through ``ctx.generate``."""
        return await ask(ctx, self.request(values), self.parser, max_reasks=self.max_reasks, budget=self.budget)
