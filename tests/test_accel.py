"""The Accelerate setup refuses what it cannot do exactly, and a run logs to its trackers on every
optimiser step and every epoch."""

import pytest
import torch
from rich.console import Console

from composer.errors import DataError
from composer.train.accel import AccelOptions, make_accelerator, per_process_batch
from composer.train.run import Run, RunOptions

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


def test_the_global_batch_must_split_evenly_across_processes():
    assert per_process_batch(12, 4) == 3
    with pytest.raises(DataError, match="batch size 10 .* 4 processes"):
        per_process_batch(10, 4)


def test_one_named_gpu_is_refused_under_a_launcher(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DataError, match="--device cuda:1 puts one GPU on every one of the 2 processes"):
        make_accelerator(AccelOptions("cuda:1", "fp32"))


@pytest.mark.parametrize("options, message", [
    (AccelOptions("cpu", "fp32", fsdp=True), "--fsdp .* does not run on the CPU"),
    (AccelOptions("cpu", "fp16"), "fp16 training needs a GPU"),
    (AccelOptions("tpu", "fp32"), "--device tpu is not a device"),
])
def test_what_cannot_run_here_is_refused(options, message):
    with pytest.raises(DataError, match=message):
        make_accelerator(options)


def test_trackers_get_every_optimiser_step_and_every_epoch(demo_root, tmp_path):
    options = RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=1, max_steps=3, batch_size=4,
                         workers=0, out=str(tmp_path), sets=SMALL + ["train.accumulate=2"], seed=0, device="cpu",
                         log_with=["none"])
    job = Run("specs/baselines/clip-adapter.yaml", options, console=Console(quiet=True))
    logged = []
    job.accelerator.log = lambda values, step: logged.append((step, values))
    job.fit()
    steps = [(s, v) for s, v in logged if "loss" in v]
    assert [s for s, _ in steps] == [1, 2]  # 3 batches, accumulating 2: the last partial window still steps
    for _, values in steps:
        assert {"loss", "loss/ce_loss", "grad_norm", "clips_per_s"} <= set(values)
        assert values["loss"] == pytest.approx(values["loss/ce_loss"])  # the only loss, weight 1
        assert any(k.startswith("lr/adapter") for k in values) and values["grad_norm"] > 0
    (epoch_step, epoch), = [(s, v) for s, v in logged if "train/loss" in v]
    assert epoch_step == 2 and {"test/top1", "test/top5", "test/mean_class"} <= set(epoch)


@pytest.mark.parametrize("extra, message", [
    (["--fsdp"], "--fsdp shards a model across GPUs; it does not run on the CPU"),
    (["--precision", "fp16"], "fp16 training needs a GPU"),
])
def test_what_the_accelerator_refuses_leaves_no_run_folder(demo_root, tmp_path, extra, message):
    """Budget: ~3 s (the demo index, no model)."""
    from click.testing import CliRunner

    from composer.cli import main

    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["run", "specs/baselines/clip-adapter.yaml", "--dataset", "demo", "--data-root",
                                       str(demo_root), "--size", "tiny", "--device", "cpu", "--out", str(out), *extra])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists() or not any(out.iterdir())


def test_fsdp_refuses_a_trained_scalar_and_keeps_frozen_ones_as_buffers():
    """FSDP1 refuses parameters without dimensions: a trained one (ViCLIP's temperature in a full fine-tune) is
    refused before the run; frozen ones (CLIP's logit scale) become buffers of the same name and value."""
    from composer.compiler.compile import BuildOptions, compile_spec
    from composer.spec.load import load_spec
    from composer.train.fsdp_state import check_shardable, scalars_as_buffers

    spec = load_spec("specs/baselines/viclip-full-finetune.yaml", ["inputs.video.size=32"])
    with pytest.raises(DataError, match="--fsdp cannot shard backbones.viclip.model.temp: the spec trains it"):
        check_shardable(spec, BuildOptions(device="cpu", tiny=True, num_classes=4))
    adapter = load_spec("specs/baselines/clip-adapter.yaml", SMALL)
    check_shardable(adapter, BuildOptions(device="cpu", tiny=True, num_classes=4))
    model = compile_spec(adapter, BuildOptions(device="cpu", tiny=True, num_classes=4))
    before = model.state_dict()
    scalars_as_buffers(model)
    assert not [n for n, p in model.named_parameters() if p.dim() == 0]
    assert "backbones.clip.model.logit_scale" in dict(model.named_buffers())
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
