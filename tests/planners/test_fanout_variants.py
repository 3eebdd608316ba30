"""Staggered fan-outs: samples spread over prompt variants, one n-request per variant, a shared prompt prefix,
agreement per variant, early stop and seeds across waves, hostile sample counts."""

import anyio
import pytest

from plait import ConfigError, Graph, SamplingParams, ScriptedBackend
from plait.executors import Completion, Sample
from plait.orchestrator import FunctionNode, VoteTallied
from plait.planners import ChainStep, EarlyStop, FanOut, NumberParser, VoteResult, rotations
from plait.viewer._reasoning_votes import votes_panel

HINTS = ["Work forwards.", "Work backwards.", "Draw a table."]


def step():
    return ChainStep("Solve. Q: {question}\nApproach: {variant}\nA:", NumberParser(int, constrain=False),
                     name="solve")


def run(node, backend, question="2+2") -> tuple[VoteResult, list]:
    g = Graph("g")
    g.add(node)
    result = anyio.run(lambda: g.run({"question": question}, backend=backend))
    return result.output, result.events


def by_hint(answers: dict[str, list[str]]) -> ScriptedBackend:
    """Replies chosen by the variant the prompt carries (each variant's list is cycled)."""
    return ScriptedBackend({f"Approach: {hint}": replies for hint, replies in answers.items()})


def test_k_samples_spread_over_variants_as_one_batch_of_n_requests():
    backend = by_hint({h: ["4"] for h in HINTS})
    result, _ = run(FanOut(step(), k=8, variants=HINTS), backend)
    assert len(backend.batches) == 1 and len(backend.batches[0]) == 3  # one round trip, one request per variant
    assert [r.params.n for r in backend.requests] == [3, 3, 2]  # 8 over 3 variants, as evenly as k allows
    assert [c.variant for c in result.candidates] == [0, 1, 2, 0, 1, 2, 0, 1]
    assert [t.samples for t in result.variants] == [3, 3, 2] and result.samples == 8


def test_every_variant_shares_the_common_part_as_a_prompt_prefix():
    backend = by_hint({h: ["4"] for h in HINTS})
    run(FanOut(step(), k=3, variants=HINTS), backend, question="What is 6 * 7?")
    prompts = [r.prompt for r in backend.requests]
    common = "Solve. Q: What is 6 * 7?\nApproach: "
    assert all(p.startswith(common) for p in prompts)
    assert [p[len(common):] for p in prompts] == [f"{h}\nA:" for h in HINTS]
    assert len(set(prompts)) == 3


def test_agreement_is_reported_per_variant_and_in_the_vote_event():
    backend = by_hint({HINTS[0]: ["4"], HINTS[1]: ["4", "5", "4"], HINTS[2]: ["5"]})
    result, events = run(FanOut(step(), k=9, variants=HINTS), backend)
    assert result.winner == 4 and result.distribution == {"4": 5, "5": 4}
    first, second, third = result.variants
    assert (first.label, first.distribution, first.agreement) == ("Work forwards.", {"4": 3}, 1.0)
    assert second.distribution == {"4": 2, "5": 1} and second.agreement == pytest.approx(2 / 3)
    assert third.distribution == {"5": 3} and third.agreement == 0.0
    [tallied] = [e for e in events if isinstance(e, VoteTallied)]
    assert [v["agreement"] for v in tallied.variants] == [1.0, pytest.approx(2 / 3), 0.0]
    assert [v["label"] for v in tallied.variants] == HINTS


def test_a_vote_without_variants_reports_none():
    result, events = run(FanOut(ChainStep("Q: {question}\nA:", NumberParser(int), name="s"), k=2),
                         ScriptedBackend(["4", "4"]))
    [tallied] = [e for e in events if isinstance(e, VoteTallied)]
    assert result.variants == [] and tallied.variants is None


def test_early_stop_draws_each_wave_across_the_variants():
    backend = by_hint({h: ["4"] for h in HINTS})
    result, _ = run(FanOut(step(), k=9, variants=HINTS, aggregate=EarlyStop(wave=3, confidence=1.0)), backend)
    assert result.stopped_early and result.samples == 3 and result.winner == 4
    assert len(backend.batches) == 1 and [r.params.n for r in backend.requests] == [1, 1, 1]
    assert [t.samples for t in result.variants] == [1, 1, 1]


def test_seeds_do_not_depend_on_the_waves():
    params = SamplingParams(temperature=0.8, seed=7)
    split = by_hint({HINTS[0]: ["4"], HINTS[1]: ["5"]})
    run(FanOut(step(), k=4, variants=HINTS[:2], sampling=params, aggregate=EarlyStop(wave=2)), split)
    whole = by_hint({HINTS[0]: ["4"], HINTS[1]: ["5"]})
    run(FanOut(step(), k=4, variants=HINTS[:2], sampling=params), whole)
    waves = [(r.params.seed, r.params.n) for r in split.requests]
    assert [(r.params.seed, r.params.n) for r in whole.requests] == [waves[0][:1] + (2,), waves[1][:1] + (2,)]
    assert waves[2][0] == waves[0][0] + 1 and waves[3][0] == waves[1][0] + 1  # variant 0's second sample, ...
    assert len({seed for seed, _ in waves}) == 4


def test_dict_variants_set_several_placeholders_which_stop_being_inputs():
    template = "Q: {question}\n{examples}\nStyle: {style}\nA:"
    solve = ChainStep(template, NumberParser(int), name="solve")
    variants = [{"examples": "2+2=4", "style": "terse"}, {"examples": "1+1=2", "style": "careful"}]
    fan = FanOut(solve, k=2, variants=variants)
    assert list(fan.signature().params) == ["question"]
    backend = ScriptedBackend(["4", "4"])
    result, _ = run(fan, backend)
    assert [r.prompt for r in backend.requests] == ["Q: 2+2\n2+2=4\nStyle: terse\nA:",
                                                    "Q: 2+2\n1+1=2\nStyle: careful\nA:"]
    assert [t.label for t in result.variants] == ["2+2=4 terse", "1+1=2 careful"]


def test_rotations_stagger_a_list_of_exemplars():
    assert rotations(["a", "b", "c"]) == ["a\n\nb\n\nc", "b\n\nc\n\na", "c\n\na\n\nb"]
    assert rotations(["a", "b", "c", "d"], 2, sep=" ") == ["a b c d", "c d a b"]
    with pytest.raises(ConfigError, match="non-empty list of strings"):
        rotations([])


def test_node_steps_take_the_variant_as_an_input():
    async def attempt(question: str, hint: str) -> int:
        return 4 if hint == "up" else 5

    result, _ = run(FanOut(FunctionNode(attempt, name="attempt"), k=5, variants=[{"hint": "up"}, {"hint": "down"}]),
                    ScriptedBackend([]))
    assert result.winner == 4 and [t.distribution for t in result.variants] == [{"4": 3}, {"5": 2}]
    assert [t.agreement for t in result.variants] == [1.0, 0.0]


def test_a_backend_returning_the_wrong_number_of_samples_cannot_inflate_the_vote():
    def reply(request):
        n = request.params.n
        return Completion(samples=tuple(Sample(text="5") for _ in range(n * 50)) if "forwards" in request.prompt
                          else (Sample(text="4"),))

    result, _ = run(FanOut(step(), k=6, variants=HINTS[:2]), ScriptedBackend(reply))
    assert result.samples == 6  # 3 of variant 0 (150 sent), 3 of variant 1 (1 sent, 2 missing)
    assert result.distribution == {"5": 3, "4": 1} and result.failed == 2
    assert all("returned 1 of 3 samples" in e for e in result.errors)


@pytest.mark.parametrize("variants, message", [
    ([], "non-empty list"),
    ("one", "non-empty list"),
    ([3], "variant 0 must be a string"),
    ([{"variant": "a"}, {"other": "b"}], "variant 1 sets ['other'] but variant 0 sets ['variant']"),
    ([{"hint": "x"}], "variants set ['hint'], which the template of 'solve' does not have"),
])
def test_bad_variants_are_refused_when_the_node_is_built(variants, message):
    with pytest.raises(ConfigError) as info:
        FanOut(step(), k=2, variants=variants)
    assert message in str(info.value)


def test_a_variant_placeholder_before_the_common_part_is_refused():
    early = ChainStep("{variant}\nQ: {question}\nA:", NumberParser(int), name="solve")
    with pytest.raises(ConfigError, match=r"placeholder \{question\} comes after the variant placeholder \{variant\}"):
        FanOut(early, k=2, variants=HINTS)


def test_node_step_variants_must_be_its_inputs():
    async def attempt(question: str) -> int:
        return 1

    with pytest.raises(ConfigError, match=r"variants set \['hint'\], which are not inputs of 'attempt'"):
        FanOut(FunctionNode(attempt, name="attempt"), k=2, variants=[{"hint": "x"}])


def test_the_run_viewer_shows_agreement_per_variant():
    backend = by_hint({HINTS[0]: ["4"], HINTS[1]: ["4", "5", "4"], HINTS[2]: ["5"]})
    _, events = run(FanOut(step(), k=9, variants=HINTS), backend)
    [tallied] = [e.to_dict() for e in events if isinstance(e, VoteTallied)]
    page = votes_panel([tallied])
    assert page.count("<tr class='plait-vote-variant'>") == 3
    assert "<td>Work backwards.</td><td>3 / 3</td><td>67%</td>" in page
    hostile = votes_panel([{**tallied, "variants": [{"label": "<script>x</script>", "agreement": "all", "samples": -1},
                                                     "not a dict", None]}])
    assert "<script>" not in hostile and hostile.count("plait-vote-variant'") == 3
    assert "plait-vote-variants" not in votes_panel([{**tallied, "variants": "garbage"}])
