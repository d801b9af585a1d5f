"""Run checkpoints as one verified unit: published atomically, verified on load, a full disk survived."""

import errno
import json
import os
import random
import shutil
import subprocess

import numpy as np
import pytest
import torch
from conftest import tiny_model

import composer.files as files
from composer.errors import DataError
from composer.rundir.checkpoint import load_trainable, read_meta
from composer.rundir.checkpoint_dir import latest_checkpoint, published, verify_checkpoint
from composer.rundir.state import load_state, save_state, saved_progress
from composer.spec.load import load_spec

SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]
META = {"classes": ["a", "b", "c"], "seed": 7, "size": "tiny"}


def setup():
    """A tiny model, its AdamW and schedule, all fresh."""
    model = tiny_model(load_spec("specs/baselines/clip-adapter.yaml", sets=SMALL))
    optimizer = torch.optim.AdamW(list(model.trainable_state().values()), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 / (1 + s))
    return model, optimizer, scheduler


def train_step(model, optimizer, scheduler) -> None:
    for p in model.trainable_state().values():
        p.grad = torch.randn_like(p)
    optimizer.step()
    scheduler.step()


def save(folder, job, step: int, keep: int = 2):
    model, optimizer, scheduler = job
    train_step(model, optimizer, scheduler)
    return save_state(folder, model, optimizer, scheduler, {"stage": 0, "epoch": step, "step": step, "best": 1.5},
                      META, keep=keep)


def weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.trainable_state().items()}


def test_a_round_trip_restores_weights_optimizer_schedule_and_generators(tmp_path):
    job = setup()
    path = save(tmp_path, job, 3)
    expected = {"weights": weights(job[0]), "optimizer": job[1].state_dict(), "scheduler": job[2].state_dict(),
                "draws": (torch.rand(4), random.random(), np.random.rand(3))}
    torch.manual_seed(99), random.seed(99), np.random.seed(99)
    other = setup()
    train_step(*other)
    assert load_state(tmp_path, *other) == {"stage": 0, "epoch": 3, "step": 3, "best": 1.5}
    for name, value in weights(other[0]).items():
        assert torch.equal(value, expected["weights"][name]), name
    got = other[1].state_dict()
    assert got["param_groups"] == expected["optimizer"]["param_groups"]
    for index, entry in expected["optimizer"]["state"].items():
        for key, value in entry.items():
            assert torch.equal(got["state"][index][key], value), (index, key)
    assert other[2].state_dict() == expected["scheduler"]
    draws = (torch.rand(4), random.random(), np.random.rand(3))
    assert torch.equal(draws[0], expected["draws"][0]) and draws[1] == expected["draws"][1]
    assert np.array_equal(draws[2], expected["draws"][2])
    manifest = verify_checkpoint(path)
    assert path.name == "step-00000003" and latest_checkpoint(tmp_path) == path
    assert (tmp_path / "latest").read_text() == "step-00000003\n"
    assert manifest["epoch"] == 3 and manifest["step"] == 3 and manifest["seed"] == 7 and manifest["resumable"]
    assert manifest["recipe"] == {"size": "tiny", "seed": 7} and manifest["composer"]
    assert set(manifest["files"]) == {"weights.safetensors", "state.safetensors", "state.json"}
    assert read_meta(path) == META and read_meta(tmp_path) == META
    assert saved_progress(tmp_path)["epoch"] == 3


def test_old_checkpoints_are_pruned_keep_last_and_best_is_kept(tmp_path):
    job = setup()
    (tmp_path / "best.safetensors").write_bytes(b"best")
    for step in (1, 2, 3, 4):
        save(tmp_path, job, step)
    assert [p.name for p in published(tmp_path)] == ["step-00000003", "step-00000004"]
    assert latest_checkpoint(tmp_path).name == "step-00000004"
    save(tmp_path, job, 4, keep=3)  # the same step again gets its own name
    assert [p.name for p in published(tmp_path)] == ["step-00000003", "step-00000004", "step-00000004-2"]
    assert (tmp_path / "best.safetensors").read_bytes() == b"best"
    model = setup()[0]
    load_trainable(model, tmp_path)  # a checkpoints folder loads its latest, like a checkpoint directory
    assert all(torch.equal(v, job[0].trainable_state()[n]) for n, v in weights(model).items())


def test_a_stale_temporary_directory_is_ignored_then_cleaned(tmp_path):
    job = setup()
    first = save(tmp_path, job, 1)
    stale = tmp_path / ".tmp-step-00000002-dead"
    shutil.copytree(first, stale)
    (stale / "weights.safetensors").write_bytes(b"half written")
    assert latest_checkpoint(tmp_path) == first and published(tmp_path) == [first]
    load_state(tmp_path, *setup())
    save(tmp_path, job, 2)
    assert not stale.exists()


def corrupt_cases():
    def flip(path):
        raw = bytearray((path / "weights.safetensors").read_bytes())
        raw[-3] ^= 0xFF
        (path / "weights.safetensors").write_bytes(bytes(raw))

    def nan(path):
        with open(path / "weights.safetensors", "r+b") as f:
            f.seek(-4, os.SEEK_END)
            f.write(np.array([np.nan], dtype=np.float32).tobytes())

    def missing(path):
        (path / "state.safetensors").unlink()

    def tampered(path):
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["epoch"] = 99
        (path / "manifest.json").write_text(json.dumps(manifest))

    return [(flip, "weights.safetensors is corrupted: its SHA-256 differs"),
            (nan, "weights.safetensors is corrupted"),
            (missing, "state.safetensors is missing"),
            (tampered, "manifest.json was changed after it was written")]


@pytest.mark.parametrize("damage, reason", corrupt_cases(), ids=["flipped", "nan", "missing", "manifest"])
def test_a_damaged_checkpoint_is_refused_with_the_reason_and_the_previous_one_offered(tmp_path, damage, reason):
    job = setup()
    first = save(tmp_path, job, 1)
    second = save(tmp_path, job, 2)
    damage(second)
    with pytest.raises(DataError) as e:
        load_state(tmp_path, *setup())
    message = str(e.value)
    assert f"{second}" in message and reason in message
    assert f"the previous checkpoint {first} (epoch 1, step 1) verifies" in message
    with pytest.raises(DataError, match=reason):
        load_trainable(setup()[0], second)  # eval --checkpoint DIR verifies the same way


def test_a_pointer_to_a_missing_checkpoint_is_refused(tmp_path):
    job = setup()
    save(tmp_path, job, 1)
    (tmp_path / "latest").write_text("step-00000009\n")
    with pytest.raises(DataError, match="names 'step-00000009', which is not a checkpoint.*step-00000001"):
        load_state(tmp_path, *setup())


def test_weights_only_checkpoints_are_not_resumed(tmp_path):
    model = setup()[0]
    save_state(tmp_path, model, None, None, {"epoch": 1, "step": 1}, META)
    load_trainable(setup()[0], tmp_path)
    with pytest.raises(DataError, match="weights only"):
        load_state(tmp_path, *setup())


def test_no_checkpoint_says_so(tmp_path):
    with pytest.raises(DataError, match="holds no checkpoint"):
        load_state(tmp_path, *setup())


def test_a_full_disk_at_any_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    job = setup()
    first = save(tmp_path, job, 1)
    kept = weights(job[0])
    calls = {"n": 0}
    original = files._write_chunk

    def counting(fd, data):
        calls["n"] += 1
        return original(fd, data)

    monkeypatch.setattr(files, "_write_chunk", counting)
    save(tmp_path / "probe", setup(), 2)
    writes = calls["n"]  # every file of a save, the manifest and the pointer
    assert writes >= 5
    for failing in range(1, writes + 1):
        calls["n"] = 0

        def full(fd, data):
            calls["n"] += 1
            if calls["n"] == failing:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return original(fd, data)

        monkeypatch.setattr(files, "_write_chunk", full)
        with pytest.raises(DataError) as e:
            save(tmp_path, job, 2)
        assert str(e.value) == (f"could not write checkpoint {tmp_path / 'step-00000002'}: No space left on device; "
                                f"the previous checkpoint {first} (epoch 1, step 1) is intact and resumable")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "probe", "step-00000001"], failing
    monkeypatch.setattr(files, "_write_chunk", original)
    model = setup()
    assert load_state(tmp_path, *model)["step"] == 1
    assert all(torch.equal(v, kept[n]) for n, v in weights(model[0]).items())


def test_a_full_tmpfs_keeps_the_previous_checkpoint(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not allowed here (the fault-injecting test covers the same path)")
    try:
        job = setup()
        first = save(mount, job, 1)
        kept = weights(job[0])
        free = shutil.disk_usage(mount).free
        (mount / "filler").write_bytes(b"\0" * max(0, free - 16 * 1024))
        with pytest.raises(DataError, match=f"No space left on device; the previous checkpoint {first} "):
            save(mount, job, 2)
        (mount / "filler").unlink()
        assert [p.name for p in published(mount)] == ["step-00000001"]
        model = setup()
        assert load_state(mount, *model)["step"] == 1
        assert all(torch.equal(v, kept[n]) for n, v in weights(model[0]).items())
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_checkpoint_is_named_by_its_file_its_directory_or_its_run_folder(tmp_path):
    from composer.rundir.checkpoint import weights_file

    job = setup()
    first, second = save(tmp_path, job, 1), save(tmp_path, job, 2)
    assert weights_file(first) == first / "weights.safetensors"
    assert weights_file(tmp_path) == second / "weights.safetensors"  # the checkpoints folder: its latest
    assert weights_file(first / "weights.safetensors") == first / "weights.safetensors"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is not a checkpoint"):
        weights_file(tmp_path / "empty")
    with pytest.raises(DataError, match="checkpoint not found"):
        weights_file(tmp_path / "nothing")


def reseal(path, change) -> None:
    """Edit a checkpoint's manifest with `change(manifest)` and recompute its own SHA-256 (a forged manifest)."""
    import hashlib

    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_the_files_a_manifest_names_stay_in_the_checkpoint_folder(tmp_path):
    """A manifest naming a file outside its folder (../x, an absolute path) or a file that is a link out of
    it is refused before the file is read."""
    job = setup()
    path = save(tmp_path / "checkpoints", job, 1)
    outside = tmp_path / "outside.json"
    outside.write_bytes((path / "state.json").read_bytes())
    entry = json.loads((path / "manifest.json").read_text())["files"]["state.json"]
    for name in ("../../outside.json", str(outside)):
        copy = tmp_path / f"case-{len(name)}" / path.name
        shutil.copytree(path, copy)
        reseal(copy, lambda m: m["files"].update({name: entry}))
        with pytest.raises(DataError, match="a checkpoint holds exactly weights.safetensors, state.safetensors, "
                                            "state.json, in its own folder"):
            verify_checkpoint(copy)
    (path / "state.json").unlink()
    (path / "state.json").symlink_to(outside)  # the same bytes, so its size and SHA-256 match the manifest
    with pytest.raises(DataError, match="state.json is a link; a checkpoint's files must be in its own folder"):
        verify_checkpoint(path)


@pytest.mark.parametrize("change", [
    lambda m: m.update(files=["weights.safetensors"]),
    lambda m: m["files"]["state.json"].pop("sha256"),
    lambda m: m["files"]["state.json"].update(bytes="12"),
    lambda m: m.update(resumable="yes"),
    lambda m: m.update(fingerprint=7)], ids=["files-list", "no-sha", "bytes-string", "resumable", "fingerprint"])
def test_a_manifest_with_wrong_typed_fields_is_refused_in_one_line(tmp_path, change):
    job = setup()
    path = save(tmp_path, job, 1)
    reseal(path, change)
    with pytest.raises(DataError) as e:
        load_state(tmp_path, *setup())
    assert "manifest.json" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("change, reason", [
    (lambda s: s.update(progress=[1]), "no progress"),
    (lambda s: s["optimizer"].update(param_groups=[]), "optimiser state that is not this run's"),
    (lambda s: s["scheduler"].update(last_epoch="three"), "schedule state that is not this run's"),
    (lambda s: s["scheduler"].update(injected=1), "schedule state that is not this run's"),
    (lambda s: s["rng"].update(python=[3, [1, 2], None]), "generator states that do not restore")],
    ids=["progress", "groups", "schedule-type", "schedule-key", "rng"])
def test_a_forged_state_is_refused_in_one_line(tmp_path, change, reason):
    """state.json rewritten and the manifest resealed: what does not restore this run's optimiser, schedule
    and generators is a one-line refusal, not a traceback or a silently different state."""
    import hashlib

    job = setup()
    path = save(tmp_path, job, 1)
    state = json.loads((path / "state.json").read_text())
    change(state)
    raw = json.dumps(state).encode()
    (path / "state.json").write_bytes(raw)
    reseal(path, lambda m: m["files"]["state.json"].update(sha256=hashlib.sha256(raw).hexdigest(), bytes=len(raw)))
    with pytest.raises(DataError, match=reason):
        load_state(tmp_path, *setup())


def test_eval_offers_the_previous_checkpoint_as_resume_does(tmp_path):
    from composer.rundir.checkpoint import weights_file

    job = setup()
    first = save(tmp_path, job, 1)
    second = save(tmp_path, job, 2)
    raw = bytearray((second / "weights.safetensors").read_bytes())
    raw[-3] ^= 0xFF
    (second / "weights.safetensors").write_bytes(bytes(raw))
    for named in (tmp_path, second):  # the checkpoints folder (its latest) or the checkpoint itself
        with pytest.raises(DataError, match=f"is corrupted.*the previous checkpoint {first} \\(epoch 1, step 1\\) "
                                            f"verifies: to use it, give --checkpoint {first}"):
            weights_file(named)
    with pytest.raises(DataError, match=f"the previous checkpoint {first} .* verifies: to use it"):
        load_trainable(setup()[0], second / "weights.safetensors")  # the file itself verifies its own digest


def test_a_latest_pointer_of_garbage_bytes_is_refused_in_one_line(tmp_path):
    job = setup()
    save(tmp_path, job, 1)
    (tmp_path / "latest").write_bytes(b"\xff\xfe\x00garbage" * 100)
    with pytest.raises(DataError, match="which is not a checkpoint"):
        load_state(tmp_path, *setup())
