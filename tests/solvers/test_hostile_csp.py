"""A hostile model writes constraint problems: every run ends within its time limit, leaves nothing running.

The reported attacks (each hung or overran at 481d1d6) come first: an equation
every assignment fails, the same 153-byte CSP through ``Formulate``, a
4,000-digit domain value, 20,000 constraints (in a subprocess, measuring peak
memory). Then hypothesis writes adversarial CSPs (huge values, huge domains,
unsatisfiable arithmetic, thousands of constraints, deep and long
expressions) fed to ``SolveCSP`` directly and, as JSON from a
``FunctionBackend``, to ``Formulate``. Each run must end within its limit plus
a generous margin ("ended, not hung"), with ``timeout``, ``invalid``, a clear
validation error or a checked result, and no thread it started still alive.
"""

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
import time

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from plait import FunctionBackend, Graph, SamplingParams
from plait.errors import ConstraintSyntaxError, NodeFailedError, NodeTimeoutError
from plait.solvers import CSP, Formulate, SolveCSP, find_conflict, parse_expr, solve

MARGIN = 5.0  # seconds past the limit that still count as "ended, not hung" (machines here are shared)
SHIFT = {"variables": [{"name": "A", "domain": {"min": 0, "max": 99999}},
                       {"name": "B", "domain": {"min": 0, "max": 99999}}],
         "constraints": ["A == B + 100000"]}  # unsatisfiable; every assignment of A fails its forward check


@contextlib.contextmanager
def no_threads_left():
    """Fails when a thread started inside the block is still alive after it."""
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == [], f"threads still running after the run: {left}"


def timed(fn):
    started = time.monotonic()
    out = fn()
    return out, time.monotonic() - started


def solve_in_graph(csp, **options):
    g = Graph("hostile")
    g.add(SolveCSP(**options))
    return anyio.run(lambda: g.run({"csp": csp})).output


def formulate(reply: str, **options):
    g = Graph("hostile_formulate")
    g.add(Formulate(max_rounds=1, sampling=SamplingParams(max_tokens=10**7), syntax="json", **options))
    backend = FunctionBackend(lambda request: reply)
    return anyio.run(lambda: g.run({"problem": "a puzzle"}, backend=backend)).output


# -- the reported attacks --------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_equation_every_assignment_fails_still_times_out():
    with no_threads_left():
        result, seconds = timed(lambda: solve_in_graph(SHIFT, time_limit=1))
    assert result.status == "timeout" and result.timed_out and "1s" in result.error
    assert seconds < 1 + MARGIN


@pytest.mark.timeout(60)
def test_a_cancelled_search_stops_before_the_node_returns():
    g = Graph("cancelled")
    g.add(SolveCSP(time_limit=None, timeout=0.3))
    with no_threads_left():
        with pytest.raises(NodeFailedError) as info:
            anyio.run(lambda: g.run({"csp": SHIFT}))
    assert isinstance(info.value.cause, NodeTimeoutError)


@pytest.mark.timeout(60)
def test_formulate_time_limit_holds_on_a_153_byte_csp():
    reply = json.dumps(SHIFT, separators=(",", ":"))
    assert len(reply) < 160
    with no_threads_left():
        formulation, seconds = timed(lambda: formulate(reply, time_limit=1))
    assert formulation.status == "timeout" and "within 1s" in formulation.feedback[0]
    assert seconds < 1 + MARGIN


@pytest.mark.timeout(60)
def test_a_4000_digit_domain_value_is_invalid_and_names_the_limit():
    huge = {"variables": [{"name": "A", "domain": [10**4000, 1]}, {"name": "B", "domain": {"min": 0, "max": 9}}],
            "constraints": ["A * A * A * A * A * A * A * A == B"]}
    with pytest.raises(ValidationError, match="MAX_VALUE") as info:
        CSP.model_validate(huge)
    assert "4001 digits" in str(info.value)
    formulation, seconds = timed(lambda: formulate(json.dumps(huge), time_limit=1))
    assert formulation.status == "invalid" and "MAX_VALUE" in formulation.feedback[0]
    assert seconds < 1 + MARGIN


@pytest.mark.timeout(60)
def test_find_conflict_timeout_bounds_the_whole_analysis():
    conflict, seconds = timed(lambda: find_conflict(CSP.model_validate(SHIFT), {}, timeout=1))
    assert conflict is None  # no conflict shown in time: the proposals are not blamed
    assert seconds < 1 + MARGIN


def test_formulate_refuses_an_over_long_reply_unread():
    formulation = formulate("{" + " " * 1_000_000 + "}", time_limit=1)
    assert formulation.status == "invalid" and "1000002 characters long" in formulation.feedback[0]


def test_a_reply_of_spaces_is_read_in_linear_time():
    # the fence-stripping regex was quadratic in a run of spaces: 200,000 took about 30 s at 481d1d6
    formulation, seconds = timed(lambda: formulate("```json\n{" + " " * 200_000 + "}\n```", time_limit=1))
    assert formulation.status == "invalid" and "does not fit the CSP schema" in formulation.feedback[0]
    assert seconds < 1 + MARGIN
    from plait._json import find_json

    assert find_json('```json\n{"a": 1}\n```') == '{"a": 1}' and find_json(" {} ") == "{}"


MANY = textwrap.dedent("""
    import json, resource, sys, threading, time
    import anyio
    from plait import Graph
    from plait.solvers import SolveCSP

    csp = {"variables": [{"name": f"V{i}", "domain": {"min": 0, "max": 99_999}} for i in range(20)],
           "constraints": [f"V{i % 20} != {i}" for i in range(20_000)]}
    g = Graph("many")
    g.add(SolveCSP(time_limit=2))
    before = threading.active_count()
    started = time.monotonic()
    result = anyio.run(lambda: g.run({"csp": csp})).output
    print(json.dumps({"status": result.status, "seconds": time.monotonic() - started,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads_left": threading.active_count() - before}))
""")


@pytest.mark.timeout(120)
def test_twenty_thousand_constraints_over_two_million_values_hold_time_and_memory():
    # at the size limits: 20 domains of 100,000 values, 20,000 one-variable constraints (each would be checked
    # against a whole domain in preprocessing: 2e9 evaluations)
    try:
        done = subprocess.run([sys.executable, "-c", MANY], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("solving 20,000 constraints with time_limit=2 was still running after 90 s")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == "timeout"
    assert report["seconds"] < 2 + MARGIN * 2
    assert report["peak_mb"] < 2048  # about 200 MB measured here alone, 1,043 MB once on a loaded machine
    assert report["threads_left"] == 0


@pytest.mark.timeout(60)
def test_twenty_thousand_constraints_through_formulate_hold_the_limit():
    reply = json.dumps({"variables": [{"name": f"V{i}", "domain": {"min": 0, "max": 9_999}} for i in range(20)],
                        "constraints": [f"V{i % 20} != {i}" for i in range(20_000)]})
    with no_threads_left():
        formulation, seconds = timed(lambda: formulate(reply, time_limit=2))
    assert formulation.status in ("timeout", "solved", "ambiguous")
    assert seconds < 2 + MARGIN


# -- the limits, each named in its error -------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "limit"), [
    ({"variables": [{"name": f"V{i}", "domain": [0]} for i in range(5_001)]}, "MAX_VARIABLES"),
    ({"variables": [{"name": "A", "domain": list(range(100_001))}]}, "MAX_DOMAIN"),
    ({"variables": [{"name": f"V{i}", "domain": {"min": 0, "max": 99_999}} for i in range(21)]}, "MAX_TOTAL_VALUES"),
    ({"variables": [{"name": "A", "domain": {"min": -10**13, "max": -10**13 + 5}}]}, "MAX_VALUE"),
    ({"variables": [{"name": "A", "domain": ["x" * 201]}]}, "MAX_TEXT"),
    ({"variables": [{"name": "A", "domain": [1]}], "constraints": ["A == 1"] * 20_001}, "MAX_CONSTRAINTS"),
    ({"variables": [{"name": "A", "domain": [1]}],
      "constraints": ["A + " * 900 + "1 == 901"] * 300}, "MAX_TOTAL_SIZE"),
    ({"variables": [{"name": "A", "domain": [1]}],
      "constraints": [{"kind": "sum", "variables": ["A"], "value": 10**20}]}, "MAX_VALUE"),
    ({"variables": [{"name": "A", "domain": [1]}],
      "constraints": [{"kind": "sum", "variables": ["A"], "weights": [-10**13], "value": 1}]}, "MAX_VALUE"),
    ({"variables": [{"name": "A", "domain": [1]}],
      "constraints": [{"kind": "table", "variables": ["A"], "rows": [[1], [10**30]]}]}, "MAX_VALUE"),
])
def test_each_size_limit_is_a_validation_error_naming_it(bad, limit):
    with pytest.raises(ValidationError, match=limit):
        CSP.model_validate(bad)


@pytest.mark.parametrize(("text", "why"), [
    (" * ".join(["(" + " * ".join(["A"] * 40) + ")"] * 3) + " == B", "MAX_BITS"),  # 4,800 bits
    ("(" + " * ".join(["A"] * 20) + ") ** 8 == B", "MAX_BITS"),
    ("A ** B == 1", "exponent"),
    ("10 ** 10 ** 10 == A", "exponent"),
    ("(10 ** 8) ** 8 == A", "nested powers"),
])
def test_expressions_that_could_build_huge_integers_are_refused(text, why):
    with pytest.raises(ConstraintSyntaxError, match=why):
        parse_expr(text, ["A", "B"])
    result = solve(CSP(variables=[{"name": n, "domain": [1, 2]} for n in "AB"], constraints=[text]))
    assert result.status == "invalid" and why in result.error


def test_a_sum_over_one_variable_that_empties_its_domain_is_unsat():
    # found by the hostile suite: python-constraint's sum preprocessing took min() of the domain it had emptied
    csp = CSP(variables=[{"name": "A", "domain": [5]}], constraints=[{"kind": "sum", "variables": ["A"], "value": 3}])
    assert solve(csp).status == "unsat"


def test_products_within_the_bound_still_evaluate_exactly():
    expr = parse_expr("(A * B * C) ** 8 == D", ["A", "B", "C", "D"])
    assert expr(10**12, 10**12, 10**12, 10**288) and not expr(10**12, 10**12, 10**12, 1)


# -- hypothesis: a hostile model --------------------------------------------------------------------------------

NAMES = ["A", "B", "C", "D"]
big_ints = st.one_of(st.integers(-10**13, 10**13), st.sampled_from([10**12, -10**12, 99_999, 100_000, 10**4000]))
values = st.one_of(st.integers(-20, 20), big_ints)
domains = st.one_of(
    st.builds(lambda low, span: {"min": low, "max": low + span}, st.integers(-10**12, 10**12), st.integers(0, 99_999)),
    st.builds(lambda span: {"min": 0, "max": span}, st.integers(0, 120_000)),
    st.lists(values, min_size=1, max_size=6, unique=True),
    st.lists(st.text(max_size=210), min_size=1, max_size=3, unique=True),
)
name = st.sampled_from(NAMES)
expressions = st.one_of(
    st.builds(lambda a, b, k: f"{a} == {b} + {k}", name, name, big_ints),  # unsatisfiable shifts
    st.builds(lambda a, n, k: " * ".join(["(" + " * ".join([a] * n) + ")"] * k) + " > 0", name,
              st.integers(1, 50), st.integers(1, 4)),  # huge products
    st.builds(lambda a, b, e: f"({a} * {b}) ** {e} != 7", name, name, st.integers(0, 12)),  # powers
    st.builds(lambda a, d: "(" * d + a + " + 1)" * d + " == 3", name, st.integers(1, 80)),  # deep nesting
    st.builds(lambda a, n: f"({a} + " * n + "1" + ")" * n + " == 2", name, st.integers(1, 40)),
    st.builds(lambda a, n: f"{a} + " * n + "1 == 2", name, st.integers(1, 1_500)),  # long text
    st.builds(lambda a, b: f"{a} // ({b} - {b}) == 1", name, name),  # division by zero
    st.builds(lambda a, b: f"abs({a} - {b}) % 7 == 3", name, name),
)
constraints = st.one_of(
    expressions,
    st.builds(lambda names: {"kind": "all_different", "variables": names},
              st.lists(name, min_size=2, max_size=4, unique=True)),
    st.builds(lambda names, value: {"kind": "sum", "variables": names, "value": value},
              st.lists(name, min_size=1, max_size=4, unique=True), values),
    st.builds(lambda rows: {"kind": "table", "variables": ["A"], "rows": [[r] for r in rows]},
              st.lists(values, max_size=50)),
)
constraint_lists = st.one_of(
    st.lists(constraints, max_size=12),
    st.builds(lambda c, n: [c] * n, constraints, st.integers(100, 4_000)),  # thousands of constraints
)
csps = st.builds(
    lambda doms, cons: {"variables": [{"name": n, "domain": d} for n, d in zip(NAMES, doms)], "constraints": cons},
    st.lists(domains, min_size=4, max_size=4), constraint_lists)

HOSTILE = settings(max_examples=20, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT = 0.5


@HOSTILE
@given(csps)
def test_solve_csp_ends_within_its_limit_on_any_hostile_csp(data):
    try:
        csp = CSP.model_validate(data)
    except ValidationError as exc:
        assert str(exc)  # a clear error, raised before any search
        return
    with no_threads_left():
        result, seconds = timed(lambda: solve_in_graph(csp, time_limit=LIMIT, mode="all", max_solutions=3))
    assert seconds < LIMIT + MARGIN
    assert result.status in ("sat", "unsat", "timeout", "invalid")
    if result.status == "invalid":
        assert result.error
    for solution in result.solutions:
        assert csp.violations(solution) == []


@HOSTILE
@given(csps)
def test_formulate_ends_within_its_limit_on_any_hostile_reply(data):
    with no_threads_left():
        formulation, seconds = timed(lambda: formulate(json.dumps(data), time_limit=LIMIT))
    assert seconds < LIMIT + MARGIN
    assert formulation.status in ("solved", "invalid", "unsat", "ambiguous", "timeout")
    if formulation.status != "solved":
        assert formulation.feedback and formulation.feedback[0]
