"""Refine: draft, critique, revise, until the answer stops changing.

A Refine node is a small subgraph built on the runtime's fixed-point loop
(``graph.loop(until="fixed_point")``), not a loop of its own::

    draft -> critique -> revise -> final
                ^----------'  (loop: until a revision's answer equals the draft it revised)

Each round shows the model its latest answer (the raw text, reasoning
included) for a critique, then asks for the answer again in the light of the
critique; the revision is parsed by the step's parser. The loop stops at the
first round whose parsed answer equals the one it started from (after
``normalize``), or after ``max_iterations`` rounds. Why the second pass and not
the fifth: looped refinement carries its gain early and later passes tend to
oscillate, so halting when the answer stops changing saves the rounds a fixed
count would spend. The critique and revise prompts extend the step's prompt
(same prefix, served by the prefix cache).

Given ``budget=`` tokens (every call's prompt and reply, re-asks included),
the subgraph runs under one :class:`Spending` of that limit: the draft gets
what is left when its ``max_tokens`` does not fit, and a critique or revision
is sent only when its prompt and full ``max_tokens`` still fit (a revision cut
short would be no answer). When the next call does not fit, the loop exits
(a routed exit, so no inner node fails) and Refine ends with the latest
revision and ``stopped="budget"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, computed_field

from plait.errors import BudgetExceededError, ConfigError
from plait.executors._base import SamplingParams
from plait.orchestrator._context import RunContext
from plait.orchestrator._graph import Graph, GraphNode
from plait.orchestrator._halting import halting_rule
from plait.orchestrator._node import Node, Param, Route, Signature
from plait.orchestrator._runtime import run_subgraph
from plait.planners._budget_split import Spending, check_budget, first_call_fits, fit, owned
from plait.planners._chain import ChainStep
from plait.planners._parsers import TextParser
from plait.planners._template import Template, TemplateSource

__all__ = ["Refine", "RefineResult", "Draft"]

T = TypeVar("T")

CRITIQUE = ("{draft}\n\nCheck the answer above step by step. Name each mistake; if there is none, say that it is "
            "correct.\nCheck:")
REVISE = ("{draft}\n\nA check of this answer said:\n{critique}\n\nWrite the answer again, correcting any mistake, "
          "and end it the same way.\nAnswer:")


class Draft(BaseModel, Generic[T]):
    """One version of the answer: its parsed ``value`` and the ``text`` it was parsed from."""

    value: T
    text: str
    spent: bool = False  # the budget ended the loop before this version could be critiqued and revised


class Critiqued(BaseModel, Generic[T]):
    """A draft and the critique of it (what ``revise`` receives)."""

    draft: Draft[T]
    critique: str | None  # None: the budget had no room for the critique


class RefineResult(BaseModel):
    """How a Refine node ended: the ``answer``, every version of it, the critiques, and why it stopped."""

    answer: Any = None
    drafts: list[Any] = []  # the first draft's value, then each revision's
    critiques: list[str] = []
    rounds: int = 0  # critique-and-revise rounds run
    stopped: str = ""  # "fixed_point" (a revision changed nothing), "limit" (max_iterations rounds) or "budget"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Refine(GraphNode):
    """Draft with ``step`` (a ChainStep), then critique and revise until the answer stops changing.

    * ``max_iterations``: most critique-and-revise rounds (>= 1; the draft is not a round);
    * ``until="fixed_point"`` (default): stop at the first round whose answer equals the draft it revised,
      compared after ``normalize``, or as text by token Jaccard >= ``similarity``; ``halt=f`` instead stops
      when ``f(previous_answer, answer)`` is true; ``until=None`` runs all ``max_iterations`` rounds;
    * ``critique``, ``revise``: prompt templates appended to the step's prompt; ``{draft}`` is the latest
      answer's text, ``{critique}`` the critique (revise only), other placeholders the step's inputs;
    * ``sampling``: sampling options of the critique and revise calls (default: the step's, and its
      ``budget`` per call when it has one);
    * ``budget``: tokens for every call (see the module docstring), instead of a ``budget`` on the step;
    * ``answer_only``: output the answer (the step's output type) instead of the :class:`RefineResult`.

    Every call goes to the step's ``model`` when it names one (else to this node's).

    The inputs are the step's inputs. Its record holds the inner nodes as ``<name>/draft``,
    ``<name>/critique``, ``<name>/revise`` and ``<name>/final``.
    """

    def __init__(self, step: ChainStep, *, max_iterations: int = 3, until: str | None = "fixed_point",
                 normalize: Callable[[Any], Any] | None = None, similarity: float | None = None,
                 halt: Callable[[Any, Any], bool] | None = None, critique: TemplateSource = CRITIQUE,
                 revise: TemplateSource = REVISE, sampling: SamplingParams | None = None, answer_only: bool = False,
                 budget: int | None = None, name: str | None = None, **policy: Any):
        if not isinstance(step, ChainStep):
            raise ConfigError(f"Refine needs a ChainStep to draft with, got {type(step).__name__}")
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
            raise ConfigError(f"Refine max_iterations counts critique-and-revise rounds: an int >= 1, "
                              f"got {max_iterations!r}")
        self.step, self.max_iterations, self.answer_only = step, max_iterations, answer_only
        name = name or f"refine_{step.name}"
        self.budget = check_budget(f"Refine {name!r}", budget)
        if self.budget is not None and step.budget is not None:
            raise ConfigError(f"Refine {name!r}: its step {step.name!r} has its own budget={step.budget}; give the "
                              "budget to the Refine, which spends it on the draft and every round")
        like_step: dict[str, Any] = {"inputs": step.inputs, "defaults": step.defaults, "sampling": sampling}
        if sampling is None:  # the step's own sampling options, and its token budget per call when it has one
            like_step.update(sampling=step.sampling, budget=step.budget)
        self.critique = ChainStep(_extend(step.template, critique, "critique", {"draft"}), TextParser(),
                                  name="critique", **like_step)
        self.revise = ChainStep(_extend(step.template, revise, "revise", {"critique"}), step.parser, name="revise",
                                **like_step)
        super().__init__(self._graph(name, max_iterations, _rule(until, halt, normalize, similarity)), name=name,
                         **policy)

    def _graph(self, name: str, max_iterations: int, rule: dict[str, Any]) -> Graph:
        step = self.step
        draft_type, critiqued_type = _typed(Draft, step.output_type), _typed(Critiqued, step.output_type)
        inputs = dict(step.params)
        g = Graph(name)

        async def draft(ctx: RunContext, kw: dict[str, Any]) -> Any:
            asked = await step.ask(ctx.using(step.model), kw)
            return draft_type(value=asked.value, text=asked.raw)

        async def critique(ctx: RunContext, kw: dict[str, Any]) -> Any:
            current = kw.pop("draft")
            values = {**kw, "draft": current.text}
            if not self._whole_call_fits(ctx, self.critique, values):
                return critiqued_type(draft=current, critique=None)
            text = (await self.critique.ask(ctx.using(step.model), values)).value
            return critiqued_type(draft=current, critique=text)

        async def revise(ctx: RunContext, kw: dict[str, Any]) -> Any:
            given = kw.pop("critiqued")
            values = {**kw, "draft": given.draft.text, "critique": given.critique}
            if given.critique is None or not self._whole_call_fits(ctx, self.revise, values):
                return Route("final", given.draft.model_copy(update={"spent": True}))  # out of the loop
            asked = await self.revise.ask(ctx.using(step.model), values)
            return draft_type(value=asked.value, text=asked.raw)

        async def final(ctx: RunContext, kw: dict[str, Any]) -> Any:
            return kw["draft"]

        used = lambda chain: {v: inputs[v] for v in chain.template.variables if v in inputs}  # noqa: E731
        stages = [_Stage("draft", inputs, draft_type, draft),
                  _Stage("critique", {**used(self.critique), "draft": Param("draft", draft_type)}, critiqued_type,
                         critique),
                  _Stage("revise", {**used(self.revise), "critiqued": Param("critiqued", critiqued_type)}, draft_type,
                         revise),
                  _Stage("final", {"draft": Param("draft", draft_type)}, draft_type, final)]
        g.edge(stages[0], stages[1], param="draft")
        g.edge(stages[1], stages[2], param="critiqued")
        if max_iterations == 1:
            g.edge(stages[2], stages[3], param="draft")
        else:  # a loop counts loop-backs: rounds - 1
            g.loop(stages[2], back_to=stages[1], param="draft", exit=stages[3], exit_param="draft",
                   max_iterations=max_iterations - 1, on_limit="exit", **rule)
        g.output(stages[3])
        return g

    def _whole_call_fits(self, ctx: RunContext, chain: ChainStep, values: dict[str, Any]) -> bool:
        """Whether a critique or revision fits the budget whole (cut short it would be of no use)."""
        ctx = ctx.using(self.step.model)
        try:
            fit(ctx, chain.request(values, ctx.backend), f"Refine {self.name!r}", whole=True)
        except BudgetExceededError as exc:
            if owned(ctx, exc):
                return False
            raise
        return True

    def models_used(self) -> set[str]:
        return super().models_used() | self.step.models_used()

    def signature(self) -> Signature:
        return Signature(dict(self.graph.input_params),
                         self.step.output_type if self.answer_only else RefineResult, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        records, prefix = ctx._state.records, ctx.node + "/"
        seen = {n: (len(r.outputs), len(r.loop_stops), r.tokens.prompt_tokens, r.tokens.completion_tokens)
                for n, r in records.items() if n.startswith(prefix)}
        first_call_fits(f"Refine {self.name!r}", self.budget, ctx.using(self.step.model), self.step.request(kwargs))
        answer = await run_subgraph(self.graph, kwargs, Spending(ctx, limit=self.budget))

        def new(stage: str) -> tuple[list[Any], list[str]]:
            record = records[prefix + stage]
            outputs, stops, _, _ = seen.get(prefix + stage, (0, 0, 0, 0))
            return record.outputs[outputs:], record.loop_stops[stops:]

        drafts, _ = new("draft")
        revisions, stops = new("revise")
        critiques, _ = new("critique")
        revisions = [r for r in revisions if not r.spent]  # a spent pass hands the last version on unchanged
        if self.answer_only:
            return answer.value
        result = RefineResult(answer=answer.value, drafts=[d.value for d in drafts + revisions],
                              critiques=[c.critique for c in critiques[:len(revisions)]], rounds=len(revisions),
                              stopped="budget" if answer.spent else stops[-1] if stops else "limit")
        for n, r in records.items():
            if n.startswith(prefix):
                _, _, prompt, completion = seen.get(n, (0, 0, 0, 0))
                result.prompt_tokens += r.tokens.prompt_tokens - prompt
                result.completion_tokens += r.tokens.completion_tokens - completion
        return result


class _Stage(Node):
    """One step of Refine's subgraph: declared inputs and output, and a coroutine that does the work."""

    def __init__(self, name: str, params: dict[str, Param], output: Any, fn: Callable[..., Any]):
        self._params, self._output, self._fn = params, output, fn
        super().__init__(name)

    def signature(self) -> Signature:
        return Signature(dict(self._params), self._output, "ctx")

    async def invoke(self, ctx: RunContext, kwargs: dict[str, Any]) -> Any:
        return await self._fn(ctx, dict(kwargs))


def _typed(model: Any, value_type: Any) -> Any:
    """``model[value_type]``: the generic model for the step's output type (so a checkpoint loads it back typed)."""
    return model[value_type]


def _rule(until: str | None, halt: Callable[[Any, Any], bool] | None, normalize: Callable[[Any], Any] | None,
          similarity: float | None) -> dict[str, Any]:
    """The loop options for Refine's halting choice; the loop compares Drafts, the user's rule their values."""
    options = _loop_options(until, halt, normalize, similarity)
    halting_rule("Refine", *(options.get(k) for k in ("until", "halt", "normalize", "similarity")))  # checks them
    return options


def _loop_options(until: str | None, halt: Callable[[Any, Any], bool] | None,
                  normalize: Callable[[Any], Any] | None, similarity: float | None) -> dict[str, Any]:
    if halt is not None:
        if not callable(halt):
            raise ConfigError(f"Refine halt= must be a callable (previous, current) -> bool, got {type(halt).__name__}")
        if until not in (None, "fixed_point") or normalize is not None or similarity is not None:
            raise ConfigError("Refine halt= is a whole rule: drop normalize= and similarity= (and until=)")
        return {"halt": lambda previous, current: halt(previous.value, current.value)}
    if until is None:
        if normalize is not None or similarity is not None:
            raise ConfigError("Refine normalize= and similarity= only apply with until='fixed_point'")
        return {"halt": lambda previous, current: False}  # every round runs
    if normalize is not None and not callable(normalize):
        raise ConfigError(f"Refine normalize= must be a callable, got {type(normalize).__name__}")
    if until != "fixed_point":
        raise ConfigError(f"Refine until= must be 'fixed_point' or None, got {until!r}")
    return {"until": until, "similarity": similarity,
            "normalize": lambda draft: draft.value if normalize is None else normalize(draft.value)}


def _extend(base: Template, tail: TemplateSource, role: str, needs: set[str]) -> Template:
    """The step's prompt followed by ``tail`` (text appended to a text prompt, messages to a chat prompt)."""
    extra = Template(tail)
    missing = sorted(needs - set(extra.variables))
    if missing:
        wanted = ", ".join("{" + m + "}" for m in missing)
        raise ConfigError(f"Refine's {role} template needs the placeholder(s) {wanted}")
    allowed = set(base.variables) | {"draft", "critique"}
    unknown = [v for v in extra.variables if v not in allowed]
    if unknown:
        raise ConfigError(f"Refine's {role} template uses {{{unknown[0]}}}, which is neither an input of the step "
                          f"({', '.join(base.variables) or 'none'}) nor draft or critique")
    clash = sorted({"draft", "critique"} & set(base.variables))
    if clash:
        raise ConfigError(f"the step's template already uses {{{clash[0]}}}, which Refine fills with the answer "
                          "being refined; rename that placeholder")
    if base.text is not None:
        if extra.text is None:
            raise ConfigError(f"Refine's {role} template must be text when the step's prompt is text")
        return Template(base.text + extra.text)
    assert base.messages is not None
    added = list(extra.messages) if extra.messages is not None else [("user", extra.text or "")]
    return Template([*base.messages, *added])
