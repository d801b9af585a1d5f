"""On a CUDA GPU: tiny models train in bf16, agree with the CPU in fp32, and their checkpoints load on a
CPU. Marked `cuda` and skipped without a GPU; benchmarks/gpu_check.sh runs them (`pytest -m cuda`)."""

import json
import math

import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT, tiny_batch, tiny_model

from composer.rundir.checkpoint import load_trainable, save_trainable
from composer.spec.load import load_spec

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]
SPECS = ["specs/baselines/clip-adapter.yaml", "specs/baselines/dinov2-dora-linear.yaml",
         "specs/papers/tds-clip.yaml", "specs/papers/msta.yaml"]


def small(path: str):
    spec = load_spec(ROOT / path)
    size = 56 if any(b.family == "dinov2" for b in spec.backbones.values()) else 64
    return load_spec(ROOT / path, sets=[f"inputs.video.size={size}", "inputs.video.frames=2"])


def to_device(batch: dict, device: str) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@pytest.fixture
def exact_fp32():
    """No TF32 in matmuls and convolutions, so CUDA and CPU fp32 results are comparable."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def on_cuda(path: str, classes: int = 3):
    """The tiny model of a spec built on the CPU with seed 0, then moved to the GPU; and the CPU copy."""
    torch.manual_seed(0)
    cpu = tiny_model(small(path), classes=classes)
    torch.manual_seed(0)
    gpu = tiny_model(small(path), classes=classes).to("cuda")
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.parametrize("path", SPECS)
def test_a_bf16_training_step_on_cuda_moves_only_the_trainable_weights(path, dataset_files):
    _, model = on_cuda(path)
    model.use_dataset_files(dataset_files)
    model.train()
    trainable = {n: p.detach().clone() for n, p in model.trainable_state().items()}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n not in trainable}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = to_device(tiny_batch(model, clips=2, classes=3), "cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(batch)["loss"]
    assert loss.device.type == "cuda" and torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(p, trainable[n]) for n, p in model.trainable_state().items())
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


@pytest.mark.parametrize("path", SPECS)
def test_cuda_outputs_match_the_cpu_in_fp32(path, dataset_files, exact_fp32):
    cpu, gpu = on_cuda(path)
    for m in (cpu, gpu):
        m.use_dataset_files(dataset_files)
        m.eval()
    batch = tiny_batch(cpu, clips=2, classes=3)
    with torch.no_grad():
        want = cpu(batch)[cpu.graph.predict]
        got = gpu(to_device(batch, "cuda"))[gpu.graph.predict]
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, rtol=1e-4, atol=1e-3)


def test_a_checkpoint_saved_from_cuda_loads_on_the_cpu(tmp_path):
    cpu, gpu = on_cuda("specs/baselines/clip-adapter.yaml")
    with torch.no_grad():
        for p in gpu.trainable_state().values():
            p.normal_()
    save_trainable(gpu, tmp_path / "ckpt.safetensors", {"epoch": 1})
    assert load_trainable(cpu, tmp_path / "ckpt.safetensors") == {"epoch": 1}
    for name, p in cpu.trainable_state().items():
        assert p.device.type == "cpu"
        assert torch.equal(p, gpu.trainable_state()[name].cpu()), name


def test_composer_run_on_cuda_in_bf16(demo_root, tmp_path):
    from composer.cli import main

    result = CliRunner().invoke(main, [
        "run", "specs/baselines/clip-adapter.yaml", "--dataset", "demo", "--data-root", str(demo_root),
        "--size", "tiny", "--device", "cuda", "--precision", "bf16", "--epochs", "1", "--max-steps", "2",
        "--batch-size", "4", "--workers", "0", "--out", str(tmp_path), "--set", "train.views={clips: 1, crops: 1}"])
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["precision"] == "bf16"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert math.isfinite(summary["parts"]["test"]["top1"])
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records and all(math.isfinite(r["loss"]) for r in records)


def test_tiny_weights_built_for_cuda_equal_those_built_for_the_cpu():
    """A tiny checkpoint trained on a GPU meets the same frozen backbone on a CPU (and back)."""
    from composer.compiler.compile import BuildOptions, compile_spec

    models = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        models.append(compile_spec(small(SPECS[0]), BuildOptions(device=device, tiny=True, num_classes=3)))
    cpu, gpu = (m.state_dict() for m in models)
    assert cpu.keys() == gpu.keys()
    for key in cpu:
        assert torch.equal(cpu[key], gpu[key].cpu()), key


def test_composer_run_with_gpu_decode_on_the_demo(demo_root, tmp_path):
    """The demo's clips are lossless H.264 in RGB (High 4:4:4 Predictive: composer/data/demo.py), which NVDEC
    may not decode. `--gpu-decode` on the demo must then still train and test every clip (decoded somewhere),
    never score them all as bad videos: this run shows which, the day a GPU is lent."""
    from composer.cli import main

    result = CliRunner().invoke(main, [
        "run", "specs/baselines/clip-linear-probe.yaml", "--dataset", "demo", "--data-root", str(demo_root),
        "--size", "tiny", "--device", "cuda", "--gpu-decode", "--epochs", "1", "--max-steps", "2",
        "--batch-size", "4", "--workers", "0", "--out", str(tmp_path), "--set", "train.views={clips: 1, crops: 1}"])
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["bad_videos"] == [] and summary["parts"]["test"]["count"] == 128, summary
