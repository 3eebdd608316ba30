"""Every Python block in README.md runs, in order, and its assertions hold."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 4


# a block that starts a real vLLM engine belongs to the vllm tier (run alone, one engine at a time)
STARTS_VLLM = re.compile(r"\bVLLMBackend\(")


@pytest.mark.parametrize("index", [pytest.param(i, marks=pytest.mark.vllm) if STARTS_VLLM.search(block) else i
                                   for i, block in enumerate(BLOCKS)])
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[index], f"README.md block {index + 1}", "exec")
    exec(code, {"__name__": f"readme_block_{index}"})
