"""Trainable-only checkpoints: small, atomic, and refused by a model they were not made for."""

import os

import pytest
import torch
from conftest import tiny_model

from composer.build.checkpoint import load_trainable, read_meta, save_trainable
from composer.errors import SpecError
from composer.spec.load import load_spec

SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]


def test_save_then_load_restores_only_the_trainable_state(tmp_path):
    a = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    with torch.no_grad():
        for p in a.trainable_state().values():
            p.normal_()
    save_trainable(a, tmp_path / "ckpt.safetensors", {"epoch": 3})
    b = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    meta = load_trainable(b, tmp_path / "ckpt.safetensors")
    assert meta == {"epoch": 3} == read_meta(tmp_path / "ckpt.safetensors")
    for name, p in a.trainable_state().items():
        assert torch.equal(p, b.trainable_state()[name])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ckpt.safetensors"), framework="pt") as f:
        assert set(f.keys()) == set(a.trainable_state())


def test_another_spec_is_refused_with_the_differences(tmp_path):
    a = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    save_trainable(a, tmp_path / "ckpt.safetensors")
    other = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL + ["components.adapter.params.dim=8"]))
    with pytest.raises(SpecError) as e:
        load_trainable(other, tmp_path / "ckpt.safetensors")
    assert "different model" in e.value.problems[0].message
    assert "checkpoint [64, 64], model [8, 64]" in e.value.problems[0].hint
    lora = tiny_model(load_spec("specs/baselines/clip-lora.yaml", sets=SMALL))
    with pytest.raises(SpecError, match="different model"):
        load_trainable(lora, tmp_path / "ckpt.safetensors")


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    path = tmp_path / "ckpt.safetensors"
    save_trainable(model, path, {"epoch": 1})
    import composer.build.checkpoint as ckpt

    def broken(tensors, filename, metadata):
        open(filename, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", broken)
    with pytest.raises(OSError):
        save_trainable(model, path, {"epoch": 2})
    assert read_meta(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


def test_a_truncated_file_is_reported_not_crashed(tmp_path):
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    path = tmp_path / "ckpt.safetensors"
    save_trainable(model, path)
    os.truncate(path, 100)
    with pytest.raises(SpecError, match="not a readable composer checkpoint"):
        load_trainable(model, path)
