"""Traces for the reasoning-panel tests: the examples run on their scripted backends, plus runs with failures
and hostile model output; and a small HTML reader to check what a person would see."""

import importlib.util
import json
from html.parser import HTMLParser
from pathlib import Path

import anyio
import pytest

from plait import ChainStep, FanOut, Graph, PlanAndExecute, SamplingParams, ScriptedBackend, SubtaskTree, read_trace
from plait.planners import Quorum, TextParser
from plait.errors import NodeFailedError

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "</script><img src=x onerror=alert(1)>"
EXAMPLE_INPUTS = {
    "self_consistency": lambda m: {"question": "pens?"},
    "subtask_tree": lambda m: {"task": "How many legs do 3 spiders and 2 ants have?"},
    "plan_execute_countries": lambda m: {"task": m.DEMO_TASK},
    "meetings": lambda m: {"problem": m.REQUEST},
}


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"_viewer_example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_traced(graph, inputs, backend, path, fails=False):
    """Run ``graph`` with a JSONL trace at ``path``; return the trace's events as dicts. ``fails``: the run
    must end with a failed node (its trace is written all the same)."""
    if fails:
        with pytest.raises(NodeFailedError):
            anyio.run(lambda: graph.run(inputs, backend=backend, trace=path))
    else:
        anyio.run(lambda: graph.run(inputs, backend=backend, trace=path))
    return read_trace(path)


def example_trace(name, tmp_path):
    module = load_example(name)
    return run_traced(module.graph, EXAMPLE_INPUTS[name](module), module.make_backend(), tmp_path / f"{name}.jsonl")


def failed_plan_trace(tmp_path):
    """A plan whose lookup fails (and whose search argument is hostile), a replan, then an answer."""
    module = load_example("plan_execute_countries")
    first = {"steps": [{"tool": "search", "args": {"query": HOSTILE}, "thought": HOSTILE},
                       {"tool": "lookup", "args": {"country": "Atlantis"}},
                       {"tool": "calculator", "args": {"expression": "#E2.population / 2"}}]}
    second = {"steps": [{"tool": "lookup", "args": {"country": "Australia"}}]}
    backend = ScriptedBackend([json.dumps(first), "Replan: Atlantis is not a country.", json.dumps(second),
                               "Answer: Australia"])
    graph = Graph("failed_plan")
    graph.add(PlanAndExecute(module.TOOLS, max_replans=1))
    return run_traced(graph, {"task": "Where is Atlantis?"}, backend, tmp_path / "failed_plan.jsonl")


def hostile_vote_trace(tmp_path, quorum=1):
    """A 5-sample vote whose winning answer is an injected tag; one sample is cut off at max_tokens. With
    ``quorum=5`` too few samples succeed and the run fails."""
    step = ChainStep("Q: {question}\nA:", TextParser(), sampling=SamplingParams(max_tokens=64), name="answer")
    replies = [HOSTILE, HOSTILE, "a very long reply " * 40, "Paris", HOSTILE]
    backend = ScriptedBackend(lambda request: replies[: request.params.n])
    graph = Graph("hostile_vote")
    graph.add(FanOut(step, k=5, aggregate=Quorum(quorum), name="vote"))
    return run_traced(graph, {"question": HOSTILE}, backend, tmp_path / "hostile_vote.jsonl", fails=quorum > 4)


def hostile_tree_trace(tmp_path):
    """A subtask tree whose model asks an injected question and concludes with an injected answer."""
    replies = [
        json.dumps({"thought": HOSTILE, "subtasks": [{"task": HOSTILE}, {"task": "What is 2+2?"}]}),
        json.dumps({"thought": "t1", "answer": HOSTILE}),
        json.dumps({"thought": "t2", "answer": "4"}),
        json.dumps({"thought": "done", "answer": "both known"}),
    ]
    graph = Graph("hostile_tree")
    graph.add(SubtaskTree(max_depth=1, name="tree"))
    return run_traced(graph, {"task": HOSTILE}, ScriptedBackend(replies), tmp_path / "hostile_tree.jsonl")


class Markup(HTMLParser):
    """Every element's tag and attributes, the text inside each element with a class, and all text."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements, self.texts, self._open, self.text = [], [], [], []
        self.feed(html)
        self.close()
        self.text = "".join(self.text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag not in ("rect", "line", "path", "br", "meta"):  # void or self-closed in this markup
            self._open.append([tag, attrs, []])

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, attrs, parts = self._open.pop()
            self.texts.append((tag, attrs, "".join(parts)))

    def handle_data(self, data):
        self.text.append(data)
        for entry in self._open:
            entry[2].append(data)

    def having(self, cls):
        """Attributes of the elements whose class list includes ``cls``."""
        return [attrs for _, attrs in self.elements if cls in (attrs.get("class") or "").split()]

    def text_of(self, cls):
        """Text inside each element whose class list includes ``cls``, in document order of closing."""
        return [text for _, attrs, text in self.texts if cls in (attrs.get("class") or "").split()]
