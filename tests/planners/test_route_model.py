"""RouteModel: a function's, a model's (hostile replies included) and a learned table's choice of route."""

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import ConfigError, FunctionBackend, Graph, NodeFailedError, ParseError, SamplingParams, ScriptedBackend
from plait.executors import Choice
from plait.orchestrator import ModelRouted
from plait.planners import ChainStep, ChooseRoute, NumberParser, RouteModel, RouteTable, TextParser


def solve() -> ChainStep:
    return ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), sampling=SamplingParams(max_tokens=8),
                     name="solve")


def by_length(question: str) -> str:
    return "large" if len(question) > 10 else "small"


def run(node, backends, question="2+2", **options):
    g = Graph("g")
    g.add(node)
    return anyio.run(lambda: g.run({"question": question}, backends=backends, **options))


def routed(result) -> list[ModelRouted]:
    return [e for e in result.events if isinstance(e, ModelRouted)]


@pytest.mark.parametrize("question, model", [("2+2", "small"), ("what is 17 times 23?", "large")])
def test_a_function_picks_the_model_each_request_goes_to(question, model):
    backends = {"small": ScriptedBackend(["4"]), "large": ScriptedBackend(["391"])}
    result = run(RouteModel(by_length, routes=["small", "large"], step=solve()), backends, question=question)
    assert result.output == {"small": 4, "large": 391}[model]
    assert [len(b.requests) for b in backends.values()] == [model == "small", model == "large"]
    (event,) = routed(result)
    assert (event.node, event.route, event.by, event.reason) == ("route", model, "function", None)
    assert set(result.tokens_by_model) == {model} and result.nodes["route"].tokens.total > 0


def test_an_async_classifier_and_node_routes():
    async def classify(question: str) -> str:
        await anyio.sleep(0)
        return "words" if question.isalpha() else "numbers"

    words = ChainStep("spell {question}", TextParser(), name="spell", model="small")
    backends = {"small": ScriptedBackend(["h-i"]), "large": ScriptedBackend(["2"])}
    node = RouteModel(classify, routes={"words": words, "numbers": "large"}, step=solve())
    assert run(node, backends, question="hi").output == "h-i"
    assert run(node, backends, question="1+1").output == 2
    assert [len(b.requests) for b in backends.values()] == [1, 1]


def test_a_route_name_the_classifier_invents_is_an_error_naming_it():
    with pytest.raises(NodeFailedError) as info:
        run(RouteModel(lambda question: "medium", routes=["small", "large"], step=solve()),
            {"small": ScriptedBackend([]), "large": ScriptedBackend([])})
    assert isinstance(info.value.__cause__, ConfigError)
    assert "returned 'medium', which is not a route (['large', 'small'])" in str(info.value.__cause__)


def test_a_declared_default_route_takes_what_the_classifier_cannot_place():
    backends = {"small": ScriptedBackend(["4"]), "large": ScriptedBackend([])}
    result = run(RouteModel(lambda question: None, routes=["small", "large"], step=solve(), default="small"), backends)
    assert result.output == 4
    (event,) = routed(result)
    assert event.route == "small" and "returned None, not a route: default 'small'" in event.reason


def chooser(**kw) -> ChooseRoute:
    return ChooseRoute("Which model should answer {question}? Reply small or large.", model="small", **kw)


def test_a_small_model_chooses_the_route_under_a_choice_constraint():
    small = ScriptedBackend({"Which model": "large", "Q:": "1"})
    large = ScriptedBackend(["391"])
    result = run(RouteModel(chooser(), routes=["small", "large"], step=solve()), {"small": small, "large": large})
    assert result.output == 391
    (ask,) = small.requests  # the choice went to the small model, constrained to the route names
    assert ask.params.constraint == Choice(options=["small", "large"])
    assert len(large.requests) == 1
    (event,) = routed(result)
    assert (event.route, event.by) == ("large", "model")
    assert result.tokens_by_model["small"].total > 0 and result.tokens_by_model["large"].total > 0


def test_a_hostile_choice_is_re_asked_then_refused_without_a_default():
    small = ScriptedBackend(["medium, obviously", "small or large"])
    with pytest.raises(NodeFailedError) as info:
        run(RouteModel(chooser(max_reasks=1), routes=["small", "large"], step=solve()),
            {"small": small, "large": ScriptedBackend([])})
    error = info.value.__cause__
    assert isinstance(error, ParseError) and "the model named no route of ['large', 'small']" in str(error)
    assert error.attempts == ["medium, obviously", "small or large"]


def test_a_hostile_choice_goes_to_the_default_route_when_declared():
    small = ScriptedBackend({"Which model": "use the gigantic one", "Q:": "5"})
    result = run(RouteModel(chooser(max_reasks=0), routes=["small", "large"], step=solve(), default="small"),
                 {"small": small, "large": ScriptedBackend([])})
    assert result.output == 5
    (event,) = routed(result)
    assert event.route == "small" and event.reason.startswith("the model named no route ('use the gigantic one'")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reply=st.text(max_size=300))
def test_whatever_the_model_replies_the_route_is_a_declared_one(reply):
    def answer(request):
        return reply if "Which model" in request.prompt_text() else "1"

    backends = {"small": FunctionBackend(answer), "large": FunctionBackend(lambda request: "2")}
    result = run(RouteModel(chooser(max_reasks=0), routes=["small", "large"], step=solve(), default="large"),
                 backends)
    (event,) = routed(result)
    assert event.route in ("small", "large") and result.output == {"small": 1, "large": 2}[event.route]


# -- a table learned from a batch's results ---------------------------------------------------------------------

def kind(question: str) -> str:
    return "arithmetic" if any(ch.isdigit() for ch in question) else "words"


RESULTS = [  # (inputs, route, correct): the small model gets arithmetic right, words only half the time
    ({"question": "2+2"}, "small", True), ({"question": "2+2"}, "large", True),
    ({"question": "3*3"}, "small", True), ({"question": "3*3"}, "large", True),
    ({"question": "spell cat"}, "small", False), ({"question": "spell cat"}, "large", True),
    ({"question": "spell dog"}, "small", True), ({"question": "spell dog"}, "large", True),
]


def test_a_learned_table_sends_each_kind_to_the_cheapest_model_that_answered_it():
    table = RouteTable.learn(RESULTS, kind=kind, cost={"small": 1, "large": 4})
    assert table.choices == {"arithmetic": "small", "words": "large"}
    assert table.accuracy["words"] == {"small": 0.5, "large": 1.0}
    assert table.fallback == "large"  # overall: small 3/4, large 4/4
    assert RouteTable.learn(RESULTS, kind=kind, cost={"small": 1, "large": 4}, tolerance=0.5).choices == {
        "arithmetic": "small", "words": "small"}
    # the same answers at equal cost: the first name in order wins, deterministically
    assert RouteTable.learn(RESULTS[:4], kind=kind, cost={"small": 1, "large": 1}).choices == {"arithmetic": "large"}


def test_a_router_with_a_learned_table_routes_by_kind_and_unseen_kinds_to_the_fallback():
    table = RouteTable.learn(RESULTS, kind=lambda question: kind(question) if len(question) < 20 else "long",
                             cost={"small": 1, "large": 4})
    backends = {"small": ScriptedBackend(["4"]), "large": ScriptedBackend(["3", "11"])}
    node = RouteModel(table, routes=["small", "large"], step=solve())
    assert [run(node, backends, question=q).output for q in ("2+2", "spell cat")] == [4, 3]
    result = run(node, backends, question="a very long question about 11")
    (event,) = routed(result)
    assert (event.route, event.by) == ("large", "table") and "kind 'long' was not learned" in event.reason
    assert result.output == 11


@pytest.mark.parametrize("results, cost, message", [
    ([], {"small": 1}, "no results to learn from"),
    ([({"question": "x"}, "tiny", True)], {"small": 1}, "route 'tiny', which has no cost"),
    ([("x", "small")], {"small": 1}, "result 0 must be \\(inputs, route, correct\\)"),
    ([("x", "small", True)], {"small": 1}, "inputs must be a dict"),
    (RESULTS, {"small": -1, "large": 2}, "costs must be numbers >= 0"),
])
def test_learning_refuses_bad_results(results, cost, message):
    with pytest.raises(ConfigError, match=message):
        RouteTable.learn(results, kind=kind, cost=cost)


@pytest.mark.parametrize("kwargs, message", [
    (dict(routes="small"), "routes must be a list"),
    (dict(routes=["small", "large"], step=None), "pass step="),
    (dict(default="medium"), "default route 'medium' is not one of the routes"),
    (dict(classifier=42), "classifier must be a function"),
    (dict(classifier=ChooseRoute("Pick for {topic}")), "uses \\['topic'\\], which are not inputs"),
    (dict(routes={"small": "small", "spell": ChainStep("{word}", name="spell")}), "the same inputs"),
    (dict(classifier=RouteTable(kind, {"words": "huge"}, "small")), "routes to \\['huge'\\]"),
])
def test_bad_arguments_are_one_line_config_errors(kwargs, message):
    args = dict(classifier=by_length, routes=["small", "large"], step=solve()) | kwargs
    with pytest.raises(ConfigError, match=message):
        RouteModel(args.pop("classifier"), args.pop("routes"), **args)


def test_an_unknown_model_is_refused_before_anything_runs():
    small = ScriptedBackend(["4"])
    with pytest.raises(ConfigError, match="'route'.*'huge'"):
        run(RouteModel(by_length, routes=["small", "huge"], step=solve()), {"small": small})
    with pytest.raises(ConfigError, match="'route'.*'judge'"):
        run(RouteModel(ChooseRoute("{question}", model="judge"), routes=["small"], step=solve()), {"small": small})
    assert small.requests == []
