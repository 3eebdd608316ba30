"""Constrained JSON on a real engine is compact: the no-whitespace setting reaches vLLM's grammar.

vLLM 0.32's xgrammar backend ignores a request's ``disable_any_whitespace`` and reads only the engine's
``structured_outputs_config``; plait's in-process engine sets it, and the test server gets the same flag.
Measured once as the control (not repeated here: one engine at a time): on an engine with whitespace allowed,
this prompt gave newline-indented JSON in the greedy reply and in all 8 seeded samples below.
"""

from __future__ import annotations

import json
import re

import anyio
import pytest

from plait import JsonSchema, Request, SamplingParams
from plait.executors import OpenAIBackend

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(900)]

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "items"],
          "properties": {"name": {"type": "string", "maxLength": 20},
                         "items": {"type": "array", "maxItems": 4,
                                   "items": {"type": "integer", "minimum": 0, "maximum": 99}}}}
PROMPT = ("Pretty-printed JSON, indented with four spaces, one key per line:\n"
          '{\n    "name": "box",\n    "items": [\n        1,\n        2\n    ]\n}\n\n'
          "Another one, pretty-printed the same way:\n")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def backend_factory(request, kind: str):
    """Fixtures are set up here, outside the test's event loop."""
    if kind == "vllm":
        return request.getfixturevalue("vllm_engine")
    url = request.getfixturevalue("vllm_server")
    return lambda: OpenAIBackend(url, "smollm2-135m")


@pytest.mark.parametrize("kind", ["vllm", "openai"])
def test_constrained_json_has_no_whitespace_between_tokens(request, kind):
    params = SamplingParams(max_tokens=120, constraint=JsonSchema(schema=SCHEMA))
    seeded = params.model_copy(update={"n": 8, "temperature": 1.0, "seed": 3})
    make = backend_factory(request, kind)

    async def main():
        async with make() as backend:
            return await backend.generate([Request(prompt=PROMPT, params=params),
                                           Request(prompt=PROMPT, params=seeded)])

    greedy, sampled = anyio.run(main)
    samples = (*greedy.samples, *sampled.samples)
    assert len(samples) == 9
    for sample in samples:
        assert sample.finish_reason == "stop", sample.text
        value = json.loads(sample.text)
        assert set(value) == {"name", "items"} and len(value["items"]) <= 4
        outside_strings = _STRING.sub('""', sample.text)
        assert not re.search(r"\s", outside_strings), sample.text  # allowed, the model writes "{\n    ..."


def test_plait_engine_pins_xgrammar_with_whitespace_off(vllm_engine):
    async def main():
        async with vllm_engine() as backend:
            return backend._require().engine.vllm_config.structured_outputs_config

    config = anyio.run(main)
    assert config.backend == "xgrammar" and config.disable_any_whitespace is True
