"""Trainable-only checkpoints: small, atomic, self-verifying, and refused by a model they were not made for."""

import errno
import json
import os
import struct

import pytest
import torch
from conftest import tiny_model

from composer.errors import DataError, SpecError
from composer.rundir.checkpoint import load_trainable, read_meta, save_trainable
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
    import composer.files as files

    def full(fd, data):
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_chunk", full)
    with pytest.raises(OSError, match="No space left"):
        save_trainable(model, path, {"epoch": 2})
    assert read_meta(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


def test_a_truncated_file_is_reported_not_crashed(tmp_path):
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    path = tmp_path / "ckpt.safetensors"
    save_trainable(model, path)
    os.truncate(path, 100)
    with pytest.raises(DataError, match="not a readable composer checkpoint"):
        load_trainable(model, path)


def tensor_offset(path, name: str) -> int:
    """Where `name`'s bytes start in a safetensors file (8-byte header length, JSON header, data)."""
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    return 8 + size + json.loads(raw[8:8 + size])[name]["data_offsets"][0]


def test_a_file_whose_tensor_bytes_changed_is_refused(tmp_path):
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    path = tmp_path / "ckpt.safetensors"
    save_trainable(model, path)
    name = sorted(model.trainable_state())[0]
    at = tensor_offset(path, name)
    with open(path, "r+b") as f:  # NaN written over the first value, as the fault injection did
        f.seek(at)
        f.write(struct.pack("<f", float("nan")))
    with pytest.raises(DataError, match=f"{path} is corrupted: its tensors' SHA-256 differs"):
        load_trainable(model, path)
    save_trainable(model, path)
    raw = bytearray(path.read_bytes())
    raw[at + 1] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="is corrupted"):
        load_trainable(model, path)


def test_non_finite_weights_are_refused_by_name(tmp_path):
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    name = sorted(model.trainable_state())[-1]
    with torch.no_grad():
        model.trainable_state()[name].view(-1)[0] = float("inf")
    save_trainable(model, tmp_path / "ckpt.safetensors")  # saved faithfully (its checksum matches) ...
    with pytest.raises(DataError, match=f"NaN or infinite values in {name}; refusing"):
        load_trainable(model, tmp_path / "ckpt.safetensors")  # ... and refused on load


def test_a_file_without_a_checksum_is_refused(tmp_path):
    from safetensors.torch import save_file

    from composer.compiler.fingerprint import fingerprint

    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    tensors = {n: p.detach().contiguous() for n, p in model.trainable_state().items()}
    save_file(tensors, tmp_path / "old.safetensors", metadata={"fingerprint": fingerprint(model)})
    with pytest.raises(DataError, match="no checksum of its tensors"):
        load_trainable(model, tmp_path / "old.safetensors")


def forged(model, tensors: dict, path) -> None:
    """A file that keeps the model's fingerprint and a digest recomputed over `tensors`: only the tensors
    themselves can tell that it does not fit."""
    from safetensors.torch import save_file

    from composer.compiler.fingerprint import fingerprint, structure
    from composer.rundir.checkpoint import tensor_digest

    save_file(tensors, path, metadata={"fingerprint": fingerprint(model), "structure": json.dumps(structure(model)),
                                       "composer": "{}", "tensors_sha256": tensor_digest(tensors)})


def _missing(t, name):
    t.pop(name)


def _extra(t, name):
    t["components.intruder.weight"] = torch.zeros(2)


def _shape(t, name):
    t[name] = torch.zeros(t[name].numel() + 1)


def _integer(t, name):
    t[name] = torch.ones_like(t[name], dtype=torch.int64)


@pytest.mark.parametrize("damage, reason", [
    (_missing, "lacks {name} (the model trains it)"),
    (_extra, "holds components.intruder.weight, which the model does not train"),
    (_shape, "holds {name} with shape"),
    (_integer, "holds {name} as int64, the model's is float32 (a checkpoint is never converted)")],
    ids=["missing", "extra", "shape", "integer"])
def test_a_checkpoint_must_hold_exactly_the_models_tensors(tmp_path, damage, reason):
    """A file with the model's fingerprint and a matching digest but one tensor missing, extra, of another
    shape or an integer dtype: refused with one line naming the tensor, the model left as it was."""
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    before = {n: p.detach().clone() for n, p in model.trainable_state().items()}
    tensors = {n: torch.randn_like(p) for n, p in before.items()}
    name = sorted(tensors)[0]
    damage(tensors, name)
    forged(model, tensors, tmp_path / "forged.safetensors")
    with pytest.raises(DataError) as e:
        load_trainable(model, tmp_path / "forged.safetensors")
    assert reason.format(name=name) in str(e.value) and "\n" not in str(e.value)
    assert all(torch.equal(p, before[n]) for n, p in model.trainable_state().items())


@pytest.mark.parametrize("meta, field", [('{"seed": "zero"}', "'seed'"), ('[1, 2]', "not a JSON object"),
                                         ('{"classes": [1, 2]}', "'classes'"), ('{"size": "huge"}', "'size'")])
def test_wrong_typed_metadata_is_refused_in_one_line(tmp_path, meta, field):
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    save_trainable(model, tmp_path / "ckpt.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(tmp_path / "ckpt.safetensors"), framework="pt") as f:
        header = dict(f.metadata(), composer=meta)
    save_file(load_file(tmp_path / "ckpt.safetensors"), tmp_path / "ckpt.safetensors", metadata=header)
    with pytest.raises(DataError, match=field):
        read_meta(tmp_path / "ckpt.safetensors")
