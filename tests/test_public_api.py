"""The public surface is exactly what __all__ says: a curated top level, the rest in the packages."""

import importlib
import types

import pytest

import plait

# What a graph's author reaches for; everything else is imported from its package.
TOP_LEVEL = {
    "__version__", "errors",
    "Graph", "Node", "Route", "RetryPolicy", "RunContext", "Run", "RunResult", "NodeRecord", "TokenUsage", "Event",
    "read_trace",
    "Backend", "Request", "Message", "SamplingParams", "Completion", "JsonSchema", "ScriptedBackend",
    "FunctionBackend", "VLLMBackend", "OpenAIBackend", "backend_for", "tool",
    "run_batch", "run_batch_sync", "Checkpointer", "SQLiteCheckpointer", "MemoryCheckpointer", "PostgresCheckpointer",
    "ChainStep", "FanOut", "SubtaskTree", "PlanAndExecute", "ReAct", "Refine",
    "CSP", "SolveCSP", "Formulate", "Explain", "ProposeAndRetract", "solve",
    "write_view",
    "PlaitError", "GraphValidationError", "InputValidationError", "RunError", "NodeFailedError", "NodeTimeoutError",
    "BudgetExceededError", "DeadlineExceededError", "RunCancelledError", "BackendError", "ParseError",
    "CheckpointError", "CheckpointMismatchError", "ConfigError",
}
PACKAGES = ["plait.orchestrator", "plait.executors", "plait.planners", "plait.solvers", "plait.durable"]


def test_top_level_is_the_curated_list():
    assert len(plait.__all__) == len(set(plait.__all__))
    assert set(plait.__all__) == TOP_LEVEL
    assert len(TOP_LEVEL) <= 60
    for name in plait.__all__:
        assert hasattr(plait, name), name


def test_every_public_attribute_is_listed():
    public = {
        name for name, value in vars(plait).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(plait.__all__) == set()


@pytest.mark.parametrize("package", PACKAGES)
def test_package_all_names_exist(package):
    module = importlib.import_module(package)
    assert len(module.__all__) == len(set(module.__all__)), package
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"


def test_every_moved_name_has_a_public_home():
    for home, names in plait._MOVED.items():
        module = importlib.import_module(home)
        for name in names.split():
            assert name in getattr(module, "__all__", []), f"{home}.{name}"
            assert hasattr(module, name), f"{home}.{name}"
            assert name not in plait.__all__, name


def test_errors_share_one_root():
    from plait import errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__ == "plait.errors":
            assert issubclass(obj, plait.PlaitError), name


def test_the_run_viewer_is_public():
    import plait.viewer

    assert plait.write_view is plait.viewer.write_view
    assert "write_view" in plait.__all__
