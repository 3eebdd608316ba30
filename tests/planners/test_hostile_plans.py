"""A hostile model writes the plans: every run ends within its limits, with a clear error or a valid result.

The planner is a :class:`~plait.FunctionBackend` whose replies are drawn by
hypothesis (derandomized: the same examples every run): cycles of every size,
fully connected reference graphs, deep and dunder references, wrong types,
garbage and deeply nested JSON. The tools are the countries example's,
wrapped to record every call they receive. The big cases (a plan that
enumerating cycles made take minutes and gigabytes, a megabyte plan, inputs
that made patterns backtrack quadratically) run in a fresh interpreter with
an address-space cap and a timeout, and report their peak memory.

Documented limits asserted here (README, "Tools and plans"): plans of at most
24 steps by default, at most 20 problems of at most 300 characters each
(plus one "... and N more" line), a reference names at most 8 fields.
"""

import functools
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plait import FunctionBackend, NodeFailedError, tool
from plait.errors import PlanError
from plait.executors import Sample
from plait.planners import plan_and_execute_graph

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import plan_execute_countries as countries  # noqa: E402

SECRET = "s3cret-value-from-the-environment"
MAX_PROBLEMS, MAX_PROBLEM_CHARS = 20, 300
SETTINGS = settings(derandomize=True, deadline=None, max_examples=40, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ARG = {"search": "query", "lookup": "country", "calculator": "expression", "llm": "prompt"}


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch):
    monkeypatch.setenv("SECRET", SECRET)


def recording_tools(calls):
    """The countries example's tools, each recording the arguments it is called with."""
    def recorded(t):
        @functools.wraps(t.fn)
        def fn(*args, **kwargs):
            calls.append((t.name, args, kwargs))
            return t.fn(*args, **kwargs)
        return tool(fn, name=t.name)
    return [recorded(t) for t in countries.TOOLS]


def run_countries(planner_reply, **options):
    """Run the countries graph with ``planner_reply`` as every plan; return (result or error, tool calls, seconds)."""
    calls = []
    graph = plan_and_execute_graph(recording_tools(calls), name="countries", **{"max_replans": 0, **options})

    def model(request):  # a Sample is sent as it is: a hostile server ignores max_tokens
        return Sample(text=planner_reply) if request.prompt_text().startswith("Make a plan") else "Answer: done"

    started = time.perf_counter()
    try:
        outcome = anyio.run(lambda: graph.run({"task": "Which country has the capital Canberra?"},
                                              backend=FunctionBackend(model), deadline=30))
    except NodeFailedError as exc:
        outcome = exc.cause
    return outcome, calls, time.perf_counter() - started


def assert_clear_outcome(outcome, seconds):
    """A valid result or a PlanError whose problems are capped; and the run ended (generous bound)."""
    assert seconds < 10, f"a hostile plan took {seconds:.1f}s"
    if isinstance(outcome, PlanError):
        assert outcome.problems and len(outcome.problems) <= MAX_PROBLEMS + 1, len(outcome.problems)
        assert all(len(p) <= MAX_PROBLEM_CHARS for p in outcome.problems), max(map(len, outcome.problems))
        assert len(str(outcome)) < 10_000
    else:
        assert not isinstance(outcome, BaseException), repr(outcome)
        assert outcome.status == "ok"


def assert_no_python_state_reached(calls):
    for name, args, kwargs in calls:
        for value in [*args, *kwargs.values()]:
            assert isinstance(value, str), (name, value)
            assert SECRET not in value, (name, value)
            assert not any(mark in value for mark in ("<class", "<function", "<module", "<built-in", "<bound")), value


# -- strategies -------------------------------------------------------------------------------------------

def step(tool_name, text):
    return {"tool": tool_name, "args": {ARG[tool_name]: text}}


@st.composite
def reference_graphs(draw, max_steps=8):
    """Plans of 1..max_steps steps, each referencing any steps (earlier, later, itself, missing)."""
    n = draw(st.integers(1, max_steps))
    steps = []
    for _ in range(n):
        refs = draw(st.lists(st.integers(1, n + 1), max_size=n))
        steps.append(step(draw(st.sampled_from(sorted(ARG))), " ".join(f"#E{j}" for j in refs) or "Canberra"))
    return {"steps": steps}


def fully_connected(n):
    """n steps that each use every step's result: n! paths of cycles to enumerate."""
    return {"steps": [step("calculator", " + ".join(f"#E{j}" for j in range(1, n + 1))) for _ in range(n)]}


FIELDS = st.sampled_from(["__class__", "__init__", "__globals__", "__dict__", "__module__", "__len__", "sys",
                          "modules", "os", "environ", "SECRET", "mro", "model_fields", "copy", "name",
                          "population", "capital", "0", "-1", "7"]) | st.from_regex(r"[A-Za-z_]\w{0,12}",
                                                                                   fullmatch=True)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def nested(k):
    return '{"steps": ' + "[" * k + "]" * k + "}"


GARBAGE = st.one_of(
    st.text(max_size=200),
    JSON_VALUES.map(json.dumps),
    JSON_VALUES.map(lambda v: json.dumps({"steps": v})),
    JSON_VALUES.map(lambda v: json.dumps({"steps": [{"tool": "search", "args": v}]})),
    st.sampled_from(["search", "lookup", 5, None, ["x"], {"a": 1}, "__import__", "x" * 300]).map(
        lambda t: json.dumps({"steps": [{"tool": t, "args": {"query": "a"}}]})),
    st.integers(1, 100_000).map(nested),
    st.integers(1, 5000).map(lambda k: "```json" + " " * k + "\n" * k),
    st.integers(1, 5000).map(lambda k: "Plan" + " " * k + "x\n#E1 = search[" + "]" * k),
)


# -- plans whose references form cycles --------------------------------------------------------------------

@SETTINGS
@given(st.one_of(reference_graphs(), st.integers(2, 8).map(fully_connected)))
def test_any_reference_graph_is_checked_and_reported_within_limits(plan):
    outcome, calls, seconds = run_countries(json.dumps(plan))
    assert_clear_outcome(outcome, seconds)
    assert_no_python_state_reached(calls)
    if isinstance(outcome, PlanError):
        assert calls == []  # an invalid plan runs nothing


def test_a_fully_connected_plan_names_one_cycle_and_caps_the_list():
    outcome, calls, seconds = run_countries(json.dumps(fully_connected(8)))
    assert_clear_outcome(outcome, seconds)
    cycles = [p for p in outcome.problems if "form a cycle" in p]
    assert cycles == ["steps E1 -> E2 -> E1 form a cycle; a step can only use results of steps before it"]
    assert outcome.problems[-1].startswith("... and ") and outcome.problems[-1].endswith("more problems; "
                                                                                           "fix the ones above first")
    assert calls == []


def test_a_plan_longer_than_max_steps_is_a_problem_sent_back_to_the_planner():
    plan = {"steps": [step("search", "Canberra")] * 25}
    outcome, calls, _ = run_countries(json.dumps(plan))
    assert isinstance(outcome, PlanError) and calls == []
    assert outcome.problems == ["the plan has 25 steps; at most 24 are allowed: leave out steps the task does not "
                                "need"]


@pytest.mark.parametrize("reply, problem", [
    (json.dumps({"steps": [step("search", f"Canberra {i}") for i in range(30)]}),
     "the plan has 30 steps; at most 24 are allowed: leave out steps the task does not need"),
    ('{"steps": [{"tool": "search", "args": {"query": ' + "[" * 30_000 + "]" * 30_000 + "}}]}",
     "the planner output is not valid JSON: it nests deeper than 32 levels"),
], ids=["30-steps", "deep-json-step"])
def test_a_streamed_plan_stops_at_the_same_limits(reply, problem):
    outcome, calls, seconds = run_countries(reply, stream=True)
    assert_clear_outcome(outcome, seconds)
    assert isinstance(outcome, PlanError) and outcome.problems == [problem]
    assert len(calls) <= 24  # at most max_steps steps were started while the plan streamed in


# -- references that try to reach Python state --------------------------------------------------------------

DUNDER = "#E1.__class__.__init__.__globals__.sys.modules.os.environ.SECRET"


def test_a_dunder_reference_never_reaches_the_environment():
    plan = {"steps": [step("lookup", "Australia"), step("search", f"capital {DUNDER}")]}
    outcome, calls, _ = run_countries(json.dumps(plan))
    assert_no_python_state_reached(calls)
    assert isinstance(outcome, PlanError)  # a plan problem, reported to the planner before anything runs
    assert outcome.problems == [
        f"step E2: argument 'query' uses {DUNDER}, but lookup returns Country whose fields are "
        "['name', 'capital', 'population', 'area_km2', 'continent', 'currency']"]


def test_at_run_time_a_path_is_read_as_data_never_as_attributes():
    """Evidence whose producer is not known at check time (an untyped tool) is read by data access only."""
    calls = []
    tools = recording_tools(calls)

    @tool
    def record(country: str):  # no return annotation: the check cannot know its fields
        """The record of one country."""
        return countries.lookup.fn(country)

    graph = plan_and_execute_graph([*tools, record], name="countries", max_replans=0)
    plan = {"steps": [{"tool": "record", "args": {"country": "Australia"}}, step("search", f"x {DUNDER}"),
                      step("search", "#E1.__class__"), step("search", "#E1.capital")]}

    def model(request):
        return json.dumps(plan) if request.prompt_text().startswith("Make a plan") else "Answer: done"

    result = anyio.run(lambda: graph.run({"task": "t"}, backend=FunctionBackend(model)))
    evidence = result.output.evidence
    assert_no_python_state_reached(calls)
    assert calls == [("search", (), {"query": "Canberra"})]  # only the declared field was read
    assert evidence["E2"].error == ("not run: #E1.__class__: Country value has no field '__class__'; its fields are "
                                    "['name', 'capital', 'population', 'area_km2', 'continent', 'currency']")
    assert evidence["E3"].error == evidence["E2"].error


@SETTINGS
@given(st.sampled_from(["lookup", "search", "calculator", "llm"]), st.lists(FIELDS, max_size=12), st.booleans())
@example("lookup", DUNDER[4:].split("."), True)
@example("lookup", ["__class__"], True)
@example("search", ["__class__", "__init__"], True)
@example("calculator", ["__class__", "__dict__"], False)
def test_no_reference_path_reads_python_state(first, path, inside_text):
    first_step = step(first, {"lookup": "Australia", "search": "Canberra", "calculator": "1 + 1",
                              "llm": "hello"}[first])
    ref = ".".join(["#E1", *path])
    plan = {"steps": [first_step, step("search", f"about {ref} please" if inside_text else ref)]}
    outcome, calls, seconds = run_countries(json.dumps(plan))
    assert_clear_outcome(outcome, seconds)
    assert_no_python_state_reached(calls)
    if len(path) > 8 and isinstance(outcome, PlanError):
        assert "a reference may name at most 8" in outcome.problems[0]


# -- garbage, wrong types, deep nesting, patterns that could backtrack -----------------------------------

@SETTINGS
@given(GARBAGE)
def test_garbage_plans_end_with_a_plan_error_or_a_result(reply):
    outcome, calls, seconds = run_countries(reply)
    assert_clear_outcome(outcome, seconds)
    assert_no_python_state_reached(calls)
    assert len(calls) <= 24


def test_json_nested_past_the_stack_limit_is_a_parse_problem():
    outcome, calls, _ = run_countries(nested(30_000))
    assert isinstance(outcome, PlanError) and calls == []
    assert outcome.problems == ["the planner output is not valid JSON: it nests deeper than 32 levels"]


# -- the big cases, in a fresh interpreter with capped memory ----------------------------------------------

def run_bounded(body, *, timeout=60, memory_mb=2048):
    """Run ``body`` in a fresh interpreter (address space capped); return the JSON it prints, with its peak memory.

    A guard that does not hold shows up as a timeout, a MemoryError under the
    cap, or a failed assertion inside: each fails the test without hogging the machine.
    """
    script = textwrap.dedent(f"""
        import json, resource, sys, time
        sys.path.insert(0, {str(ROOT / "examples")!r})
        started = time.perf_counter()
        out = {{}}
    """) + textwrap.dedent(body) + textwrap.dedent("""
        out["seconds"] = time.perf_counter() - started
        # VmHWM: this interpreter's own peak (ru_maxrss would count the forked parent's pages too)
        hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
        out["peak_mb"] = (int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
        print(json.dumps(out))
    """)

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))

    try:
        proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=cap_memory, env={**os.environ, "SECRET": SECRET})
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout}s: the guard did not hold")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


PLAN_RUN = textwrap.dedent("""
    import anyio
    from plait import FunctionBackend, NodeFailedError, PlanError, Sample
    import plan_execute_countries as ex
    calls = []
    def model(request):
        return Sample(text=REPLY) if request.prompt_text().startswith("Make a plan") else "Answer: done"
    for t in ex.TOOLS:
        fn = t.fn
        t.fn = lambda *a, _fn=fn, **k: (calls.append(k), _fn(*a, **k))[1]
    try:
        anyio.run(lambda: ex.graph.run({"task": "t"}, backend=FunctionBackend(model), deadline=20))
        out["error"] = None
    except NodeFailedError as exc:
        assert isinstance(exc.cause, PlanError), repr(exc.cause)
        out["error"], out["problems"] = type(exc.cause).__name__, exc.cause.problems
    out["tool_calls"] = len(calls)
""")


def test_eleven_steps_referencing_each_other_are_checked_in_bounded_time_and_memory():
    """At 481d1d6 this plan (1 KB) took 194 s and 13.4 GB: every cycle was listed."""
    out = run_bounded(f"REPLY = {json.dumps(json.dumps(fully_connected(11)))}\n" + PLAN_RUN)
    assert out["error"] == "PlanError" and out["tool_calls"] == 0
    assert "steps E1 -> E2 -> E1 form a cycle; a step can only use results of steps before it" in out["problems"]
    assert len(out["problems"]) == MAX_PROBLEMS + 1
    assert out["seconds"] < 30 and out["peak_mb"] < 500


def test_a_megabyte_plan_runs_no_tool_and_stays_small():
    """At 481d1d6 a 1 MB plan ran 20,000 tool calls."""
    reply = json.dumps({"steps": [step("search", f"Canberra {i}") for i in range(20_000)]})
    assert len(reply) > 900_000
    out = run_bounded(f"REPLY = {json.dumps(reply)}\n" + PLAN_RUN)
    assert out["error"] == "PlanError" and out["tool_calls"] == 0
    assert out["problems"] == [f"the plan is {len(reply)} characters long; at most 64000 are read: write a "
                               "shorter plan"]
    assert out["seconds"] < 30 and out["peak_mb"] < 500


LINEAR_HEAD = textwrap.dedent("""
    import anyio
    from plait import FunctionBackend, Graph, PlanAndExecute, ReAct, RunError, Sample
    import plan_execute_countries as ex
""")
LINEAR_RUN = textwrap.dedent("""
    def model(request):
        return Sample(text=PLAN if request.prompt_text().startswith("Make a plan") else REPLY)
    graph = Graph("g")
    graph.add(NODE)
    run_started = time.perf_counter()
    try:
        anyio.run(lambda: graph.run({"task": "t"}, backend=FunctionBackend(model)))
    except RunError:
        pass  # a clear error is as good as a result here: this test is about time
    out["run_seconds"] = time.perf_counter() - run_started
""")
VALID_PLAN = json.dumps({"steps": [step("search", "Canberra")]})


@pytest.mark.parametrize("name, node, plan, reply", [
    ("an unclosed fence followed by spaces", "PlanAndExecute(ex.TOOLS, max_replans=0)",
     '"```json" + " " * 60_000', '"Answer: x"'),
    ("a text plan line followed by spaces", "PlanAndExecute(ex.TOOLS, plan_format='text', max_replans=0)",
     '"Plan" + " " * 63_000 + "x\\n#E1 = search[Canberra]"', '"Answer: x"'),
    ("a solver reply of many newlines", "PlanAndExecute(ex.TOOLS, max_replans=1)",
     repr(VALID_PLAN), '"\\n" * 150_000 + "Answer: x"'),
    ("a ReAct reply of many newlines", "ReAct(ex.TOOLS, max_steps=1)",
     '""', '"\\n" * 150_000 + "Final Answer: x"'),
], ids=["fence", "text-plan-line", "replan", "react-action"])
def test_patterns_over_model_text_are_linear(name, node, plan, reply):
    """Each of these backtracked quadratically at 481d1d6 (10 s to minutes of event-loop time)."""
    out = run_bounded(LINEAR_HEAD + f"PLAN = {plan}\nREPLY = {reply}\nNODE = {node}\n" + LINEAR_RUN, timeout=30)
    assert out["run_seconds"] < 3, name  # linear: milliseconds
