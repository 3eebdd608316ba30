"""What a new user tripped on (issue 14): one test per item, each failing on the old behaviour."""

import asyncio
import json
import signal
import socket
import threading
import traceback
import warnings

import anyio
import pytest

from plait import (
    BackendError,
    CheckpointMismatchError,
    ConfigError,
    Graph,
    GraphValidationError,
    InputValidationError,
    NodeFailedError,
    NodeTimeoutError,
    ParseError,
    PlaitError,
    Request,
    Route,
    RetryPolicy,
    RunContext,
    SamplingParams,
    ScriptedBackend,
    read_trace,
    run_batch,
    run_batch_sync,
)
from plait.cli import main as cli_main
from plait.errors import GraphError, LoopLimitError, ScriptExhaustedError, SubtaskBudgetError, VoteError
from plait.executors import Sample
from plait.planners import BestOfN, ChainStep, FanOut, LLMJudge, NumberParser, Quorum


def _doubler() -> Graph:
    g = Graph("inp2")

    @g.node
    def double(n: int) -> int:
        return 2 * n

    return g


# 1. an empty dict is "missing required input(s)", like None -------------------------------------------------

@pytest.mark.parametrize("value", [{}, None])
def test_empty_input_names_the_missing_inputs(value):
    with pytest.raises(InputValidationError) as info:
        _doubler().run_sync(value)
    assert str(info.value) == "graph 'inp2' is missing required input(s) n (needed by node(s) double)"


def test_a_single_dict_input_still_takes_an_empty_dict():
    g = Graph("one_dict")

    @g.node
    def size(options: dict) -> int:
        return len(options)

    assert g.run_sync({}).output == 0


def test_unknown_input_lists_the_known_ones():
    with pytest.raises(InputValidationError) as info:
        _doubler().run_sync({"m": 1})
    assert str(info.value) == "graph 'inp2' has no input(s) m; its inputs are: n"


# 2. NodeFailedError chains the node's exception ------------------------------------------------------------

def _slow_graph() -> Graph:
    g = Graph("slow")

    @g.node(timeout=0.05)
    async def wait(x: int) -> int:
        await anyio.sleep(30)
        return x

    return g


def test_node_failure_chains_its_cause_and_records_its_type(tmp_path):
    trace = tmp_path / "run.jsonl"
    with pytest.raises(NodeFailedError) as info:
        _slow_graph().run_sync(1, trace=str(trace))
    err = info.value
    assert err.__cause__ is err.cause and isinstance(err.cause, NodeTimeoutError)
    shown = "".join(traceback.format_exception(err))
    assert "NodeTimeoutError: node 'wait' timed out after 0.05s" in shown
    assert "The above exception was the direct cause" in shown
    record = err.partial.nodes["wait"]
    assert (record.error_type, record.error) == ("NodeTimeoutError", "NodeTimeoutError: node 'wait' timed out after 0.05s")
    failed = [e for e in read_trace(trace) if e["kind"] == "node_failed"]
    assert [e["error_type"] for e in failed] == ["NodeTimeoutError"]


def test_skipped_node_keeps_its_error_type():
    g = Graph("skip")

    @g.node(on_error="skip")
    def boom(x: int) -> int:
        raise KeyError("nope")

    result = g.run_sync(1)
    assert (result.nodes["boom"].error_type, result.status) == ("KeyError", "partial")


# 3. synchronous entry points --------------------------------------------------------------------------------

def _square() -> Graph:
    g = Graph("square")

    @g.node
    async def square(x: int) -> int:
        return x * x

    return g


def test_run_sync_and_run_batch_sync_from_a_script(tmp_path):
    assert _square().run_sync(7).output == 49
    out = tmp_path / "results.jsonl"
    batch = run_batch_sync(_square(), [1, 2, 3], output=out)
    assert [item.output for item in batch.items] == [1, 4, 9]
    assert [json.loads(line)["output"] for line in out.read_text().splitlines()] == [1, 4, 9]


def test_sync_entry_points_work_inside_a_running_event_loop(tmp_path):
    """A notebook cell runs inside a loop that is already running: the sync calls must still work there."""

    async def cell():
        asyncio.get_running_loop()  # a loop runs here, as in Jupyter
        result = _square().run_sync(5)
        batch = run_batch_sync(_square(), [4], output=tmp_path / "r.jsonl")
        return result.output, batch.items[0].output

    assert asyncio.run(cell()) == (25, 16)


def test_ctrl_c_while_a_notebook_cell_waits_cancels_the_run():
    """KeyboardInterrupt in the waiting thread cancels the run on the worker loop: no node runs on afterwards."""
    started, cancelled = threading.Event(), threading.Event()
    g = Graph("hang")

    @g.node
    async def hang(x: int) -> int:
        started.set()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return x

    def press_ctrl_c(main: int) -> None:
        if started.wait(30):
            signal.pthread_kill(main, signal.SIGINT)

    async def cell():  # like a Jupyter kernel, Ctrl-C raises KeyboardInterrupt (asyncio.run would cancel instead)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        presser = threading.Thread(target=press_ctrl_c, args=(threading.get_ident(),))
        presser.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                g.run_sync(1)
        finally:
            presser.join()
            signal.signal(signal.SIGINT, previous)

    asyncio.run(cell())
    assert started.is_set() and cancelled.is_set()


def test_sync_entry_points_raise_the_run_error():
    with pytest.raises(NodeFailedError, match="node 'wait' failed: NodeTimeoutError"):
        asyncio.run(_in_loop(_slow_graph().run_sync, 1))


async def _in_loop(fn, *args):
    return fn(*args)


def test_run_batch_is_a_coroutine_that_does_nothing_until_awaited(tmp_path):
    out = tmp_path / "r.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pending = run_batch(_square(), [1], output=out)
        assert asyncio.iscoroutine(pending) and not out.exists()
        assert anyio.run(lambda: pending).items[0].output == 1


# 4. seed= on a run: a clear error saying where seeds go --------------------------------------------------------

def test_run_level_seed_says_to_seed_the_request():
    with pytest.raises(ConfigError) as info:
        _doubler().run_sync({"n": 1}, seed=7)
    assert str(info.value) == (
        "a run takes no seed=: a seed belongs to each request, as SamplingParams(seed=7) on the node or request; "
        "for fresh samples from a checkpoint change that seed, or run with cache=False")
    with pytest.raises(ConfigError, match=r"^unknown run option 'budget'; the options are: backend, backends, max_concurrency"):
        _doubler().stream({"n": 1}, budget=5)
    with pytest.raises(ConfigError, match="unknown run option 'sed'"):
        run_batch_sync(_doubler(), [{"n": 1}], sed=1)


def test_a_request_seed_is_what_changes_the_recorded_samples(tmp_path):
    g = Graph("seeded")

    @g.node
    async def ask(seed: int, ctx: RunContext) -> str:
        return (await ctx.generate(Request(prompt="pick", params=SamplingParams(seed=seed)))).text

    backend = ScriptedBackend(["first", "second"])
    db = str(tmp_path / "runs.db")
    assert g.run_sync(7, backend=backend, checkpoint=db, run_id="a").output == "first"
    assert g.run_sync(7, backend=backend, checkpoint=db, run_id="b").output == "first"  # recorded sample reused
    assert g.run_sync(8, backend=backend, checkpoint=db, run_id="c").output == "second"  # a new seed: fresh


# 5. LoopLimitError: what max_iterations counts, and a message that fits the loop ------------------------------

def _spin(max_iterations: int, with_exit: bool) -> Graph:
    g = Graph("spin")

    @g.node
    def draft(x: int, feedback: int = 0) -> int:
        return x + feedback

    @g.node
    def check(draft: int) -> Route[int]:
        return Route("draft", draft + 1)  # never satisfied

    g.edge(draft, check)
    if with_exit:
        @g.node
        def done(value: int) -> int:
            return value

        g.loop(check, back_to=draft, param="feedback", exit=done, exit_param="value", max_iterations=max_iterations)
    else:
        g.loop(check, back_to=draft, param="feedback", max_iterations=max_iterations)
    return g


def test_max_iterations_counts_loop_backs_not_body_runs():
    with pytest.raises(LoopLimitError) as info:
        _spin(3, with_exit=True).run_sync(1)
    assert info.value.partial.nodes["draft"].runs == 4  # the first run, then 3 loop-backs
    assert [e.iteration for e in info.value.partial.events if e.kind == "loop_iteration"] == [1, 2, 3]


def test_loop_limit_message_depends_on_the_loop():
    with pytest.raises(LoopLimitError) as info:
        _spin(3, with_exit=True).run_sync(1)
    assert str(info.value) == (
        "loop 'check' -> 'draft' hit its limit of 3 loop-back(s) (the body ran 4 times) and 'check' routed back "
        "again; raise max_iterations, or pass on_limit=\"exit\" to send the last value on to 'done'")
    assert info.value.exit == "done"
    with pytest.raises(LoopLimitError) as info:
        _spin(1, with_exit=False).run_sync(1)
    assert str(info.value) == (
        "loop 'check' -> 'draft' hit its limit of 1 loop-back(s) (the body ran 2 times) and 'check' routed back "
        "again; raise max_iterations, or give the loop an exit node (exit=...) with on_limit=\"exit\"")
    assert info.value.exit is None


# 6. messages: Python names, no empty lists, no doubled quotes -------------------------------------------------

def test_start_with_an_unknown_node_is_one_unknown_node_problem():
    g = Graph("bad")

    @g.node
    def a(x: int) -> int:
        return x

    @g.node
    def b(y: int, z: int) -> int:
        return y

    g.edge(a, b)
    g.start("nope")
    with pytest.raises(GraphValidationError) as info:
        g.validate()
    assert info.value.problems == [
        "edge 'a' -> 'b': 'b' has several inputs (y, z); say which one receives the output of 'a' with param=...",
        "start() refers to unknown node 'nope' (known nodes: a, b)",
    ]


# 7. summary(), FewShot with a CSP, wiring a function that is not a node -----------------------------------

def test_summary_returns_the_table_as_text():
    text = _square().run_sync(3).summary()
    assert text.splitlines()[0].split() == ["node", "status", "runs", "busy_ms", "tokens"]
    assert text.splitlines()[1].split()[:3] == ["square", "ok", "1"]


def test_few_shot_takes_a_csp_or_a_dict():
    from plait.solvers import CSP, FewShot, Formulate

    spec = {"variables": [{"name": "A", "domain": [1, 2]}], "constraints": ["A != 1"]}
    as_csp, as_dict = FewShot(problem="p", model=CSP(**spec)), FewShot(problem="p", model=spec)
    assert as_csp.model == as_dict.model
    shown = [text for _, text in Formulate(syntax="json", examples=[as_csp, as_dict]).example_turns]
    assert json.loads(shown[0]) == json.loads(shown[1]) == CSP(**spec).model_dump(mode="json", by_alias=True,
                                                                                 exclude_none=True)


def test_wiring_a_function_that_is_not_a_node_names_it():
    g = Graph("wired")

    @g.node
    def a(x: int) -> int:
        return x

    def helper(v: int) -> int:
        return v

    with pytest.raises(GraphError) as info:
        g.edge(a, helper)
    assert str(info.value) == ("graph 'wired': function 'helper' is not a node of this graph; declare it with "
                               "@graph.node or add it with graph.add(helper) before wiring it")
    assert list(g.nodes) == ["a"]
    g.add(helper)
    g.edge(a, helper)  # once added, wiring it is fine
    assert g.run_sync(4).output == 4


# 9. documented behaviours: Quorum, BestOfN's scorer, LLMJudge's template, ScriptedBackend and logprobs ---------

def _vote(aggregate, replies, k=3, **fan):
    g = Graph("vote")
    step = ChainStep("Q: {question}\nA:", NumberParser(int, constrain=False), name="solve")
    g.add(FanOut(step, k=k, aggregate=aggregate, name="vote", **fan))
    return g.run_sync({"question": "2+2"}, backend=ScriptedBackend(replies))


def test_quorum_counts_successful_samples():
    assert _vote(Quorum(2), ["4", "four", "4"]).output.winner == 4
    with pytest.raises(NodeFailedError) as info:
        _vote(Quorum(2), ["4", "four", "no idea"])
    assert isinstance(info.value.cause, VoteError)


def test_best_of_n_calls_the_scorer_with_answer_and_raw_text():
    seen = []

    def scorer(answer, raw_text):
        seen.append((answer, raw_text))
        return answer

    assert _vote(BestOfN(scorer), ["4", "so 7", "5"]).output.winner == 7
    assert seen == [(4, "4"), (7, "so 7"), (5, "5")]


def test_llm_judge_template_without_candidate_is_refused_when_built():
    with pytest.raises(ConfigError) as info:
        LLMJudge("Rate the answer to {question}:")
    assert str(info.value) == ("an LLMJudge template needs a {candidate} placeholder where the sample's text goes "
                               "(its placeholders: {question})")


def test_scripted_backend_refuses_logprobs_it_does_not_have():
    backend = ScriptedBackend(["plain", Sample(text="rich", completion_tokens=1, cumulative_logprob=-0.5)])
    asked = SamplingParams(logprobs=1)
    with pytest.raises(BackendError) as info:
        anyio.run(lambda: backend.generate([Request(prompt="x", params=asked)]))
    assert str(info.value) == ("ScriptedBackend was asked for logprobs=1, but its scripted reply 'plain' is plain "
                               "text, which has none; script a Sample(text=..., cumulative_logprob=..., "
                               "logprobs=...) instead")
    (completion,) = anyio.run(lambda: backend.generate([Request(prompt="x", params=asked)]))
    assert completion.samples[0].cumulative_logprob == -0.5


# 10. bad arguments are plait errors, and error attributes are constructor arguments --------------------------

def test_bad_run_arguments_are_config_errors_that_old_code_still_catches():
    for options in ({"max_concurrency": 0}, {"deadline": 0}, {"token_budget": -1}):
        with pytest.raises(ConfigError):
            _doubler().run_sync({"n": 1}, **options)
    assert issubclass(ConfigError, PlaitError) and issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, TypeError)


def test_parse_error_attempts_is_a_constructor_argument():
    err = ParseError("no parsable reply", raw="b", attempts=["a", "b"])
    assert (err.attempts, err.raw) == (["a", "b"], "b")
    assert ParseError("x").attempts == []


def test_scripted_backend_exhausted_message_has_no_empty_slot():
    backend = ScriptedBackend(["only"])
    anyio.run(lambda: backend.generate([Request(prompt="x")]))
    with pytest.raises(ScriptExhaustedError) as info:
        anyio.run(lambda: backend.generate([Request(prompt="yes please")]))
    assert str(info.value) == ("ScriptedBackend has no reply left for the request whose prompt starts 'yes please'; "
                               "add more replies to the script")


def test_python_errors_name_arguments_and_the_cli_names_flags(tmp_path, capsys, monkeypatch):
    (tmp_path / "two.py").write_text(
        "from plait import Graph\n"
        "one = Graph('g')\none.add(lambda x: x + 1, name='inc')\n"
        "other = Graph('g')\nother.add(lambda x: x - 1, name='dec')\n")
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "runs.db")
    g, other = _square(), Graph("square")
    other.add(lambda x: x, name="same")
    g.run_sync(2, checkpoint=db, run_id="r")
    with pytest.raises(CheckpointMismatchError) as info:
        other.run_sync(2, checkpoint=db, run_id="r")
    assert str(info.value).endswith("use a new run_id= (or a new checkpoint file)") and "--" not in str(info.value)
    with pytest.raises(CheckpointMismatchError, match="was started with a different input;.* or use a new run_id=$"):
        g.run_sync(3, checkpoint=db, run_id="r")
    argv = ["run", "two.py:one", "--input", "1", "--checkpoint", "cli.db", "--run-id", "x"]
    assert cli_main(argv) == 0
    argv[1] = "two.py:other"
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.endswith("use a new --run-id (or a new checkpoint file)\n") and "run_id=" not in err


def test_cli_says_a_an_by_the_type_name(tmp_path, capsys, monkeypatch):
    (tmp_path / "things.py").write_text("number = 3\nnames = ['a']\n")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["run", "things.py:number", "--input", "1"]) == 2
    assert cli_main(["run", "things.py:names", "--input", "1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["plait: error: 'things.py:number' is an int, not a plait Graph",
                   "plait: error: 'things.py:names' is a list, not a plait Graph"]


# 8. CLI exit codes and output ---------------------------------------------------------------------------------

def test_cli_dead_model_server_is_a_run_failure(tmp_path, capsys, monkeypatch):
    (tmp_path / "asks.py").write_text(
        "from plait import Graph, Request, RunContext\ngraph = Graph('asks')\n\n"
        "@graph.node\nasync def ask(q: str, ctx: RunContext) -> str:\n"
        "    return (await ctx.generate(Request(prompt=q))).text\n")
    monkeypatch.chdir(tmp_path)
    with socket.socket() as bound:  # bound but not listening: connections are refused, and no one else can take it
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/v1"
        code = cli_main(["run", "asks.py:graph", "--input", '"hi"', "--model", url])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"plait: run failed: {url}/models failed after") and err.count("\n") == 1


def test_cli_batch_with_a_failed_input_exits_1_and_outputs_print_as_json(tmp_path, capsys, monkeypatch):
    (tmp_path / "inv.py").write_text(
        "from plait import Graph\ngraph = Graph('inv')\ngraph.add(lambda x: 1 / x, name='inv')\n"
        "text = Graph('text')\ntext.add(lambda x: f'line one\\n{x}', name='say')\n")
    (tmp_path / "in.jsonl").write_text("1\n0\n")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["run", "inv.py:graph", "--inputs", "in.jsonl"]) == 1
    rows = sorted((json.loads(line) for line in capsys.readouterr().out.splitlines()), key=lambda r: r["index"])
    assert [r["status"] for r in rows] == ["ok", "failed"]  # printed as they finish: sorted by index here
    assert cli_main(["run", "inv.py:text", "--input", '"two"']) == 0
    assert json.loads(capsys.readouterr().out) == "line one\ntwo"  # a str prints as a JSON string


def test_subtask_budget_error_owner_is_a_constructor_argument():
    owner = object()
    err = SubtaskBudgetError("t", 10, 8, partial=None, owner=owner)
    assert err.owner is owner and SubtaskBudgetError("t", 1, 1).owner is None


@pytest.mark.parametrize("build", [
    lambda: FanOut(ChainStep("{q}", NumberParser(int)), k=0),
    lambda: Quorum(0),
    lambda: NumberParser(str),
    lambda: ScriptedBackend(42),
    lambda: RetryPolicy(attempts=0),
    lambda: ChainStep("{q}", inputs={"nope": int}),
    lambda: _doubler().run_sync(1, run_id="r"),
])
def test_bad_arguments_across_plait_are_config_errors(build):
    with pytest.raises(ConfigError):
        build()
