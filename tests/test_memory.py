"""The memory bill of a training step: predicted on the meta device, checked against a real measurement."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import class_names, tiny_batch

from composer.cli import main
from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.memory import MemoryModel, measure_activations
from composer.compiler.memory_sizes import parse_bytes
from composer.recompute import kept_for_backward
from composer.spec.load import load_spec
from composer.spec.shipped import shipped

SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]
CLASSES = 3


def _descriptions(tmp_path) -> dict:
    """The per-class description file MSTA reads from its dataset."""
    names = class_names(CLASSES)
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps({n: {"spatial": [f"{n} a", f"{n} b"], "temporal": [f"{n} c", f"{n} d"]} for n in names}))
    return {"descriptions": path}


@pytest.mark.parametrize("name, recompute", [("clip-adapter", True), ("msta", True), ("tds-clip", True),
                                             ("dinov2-dora-linear", True), ("clip-adapter", False)])
def test_predicted_activations_match_the_bytes_a_cpu_step_keeps(name, recompute, tmp_path):
    spec = load_spec(shipped()[name], sets=SMALL)
    meta = compile_spec(spec, BuildOptions(device="meta", tiny=True, num_classes=CLASSES, recompute=recompute))
    predicted = measure_activations(meta, clips=2).kept
    torch.manual_seed(0)
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=CLASSES, recompute=recompute))
    model.use_dataset_files(_descriptions(tmp_path))
    model.train()
    batch = tiny_batch(model, clips=2, classes=CLASSES)
    measured = kept_for_backward(lambda: model(batch)["loss"], model)
    assert abs(predicted - measured) <= 0.10 * measured, (predicted, measured)


def test_half_precision_saves_half_matmul_inputs_as_cpu_autocast_does():
    """CPU autocast keeps layer norms in bf16 where CUDA's runs them in fp32 (the emulation follows CUDA,
    checked by benchmarks/gpu_check.sh), so the CPU check uses a spec whose gradient region has no norm.
    Stored, not recomputed: recomputed blocks keep only their input, the residual stream, which stays fp32.
    (At tiny width half precision keeps more than fp32: the half copies of frozen weights a linear layer
    saves to pass gradients to its input outweigh the halved activations.)"""
    spec = load_spec(shipped()["dinov2-dora-linear"], sets=SMALL)
    meta = compile_spec(spec, BuildOptions(device="meta", tiny=True, num_classes=CLASSES, recompute=False))
    full, half = measure_activations(meta, 2, "fp32").kept, measure_activations(meta, 2, "bf16").kept
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=CLASSES, recompute=False))
    model.train()
    batch = tiny_batch(model, clips=2, classes=CLASSES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        measured = kept_for_backward(lambda: model(batch)["loss"], model)
    assert abs(half - measured) <= 0.10 * measured, (half, measured)
    assert abs(full - measured) > 0.01 * measured  # fp32 would not pass: autograd keeps half copies of frozen weights


def test_bill_adds_up_and_the_optimizer_follows_the_spec():
    spec = load_spec(shipped()["clip-adapter"], sets=SMALL)
    model = compile_spec(spec, BuildOptions(device="meta", tiny=True))
    trainable = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    bill = MemoryModel(model).bill(3)
    assert bill.trainable == bill.gradients == trainable
    assert bill.optimizer == 2 * trainable  # AdamW: two moments
    assert bill.weights == sum(t.nbytes for t in [*model.parameters(), *model.buffers()])
    assert bill.peak == bill.weights + bill.gradients + bill.optimizer + bill.activations + bill.temporary
    sgd = compile_spec(load_spec(shipped()["clip-adapter"], sets=SMALL + ["train.optimizer=sgd"]),
                       BuildOptions(device="meta", tiny=True))
    assert MemoryModel(sgd).bill(3).optimizer == trainable  # momentum: one


def test_max_batch_size_fits_and_grows_with_the_budget():
    spec = load_spec(shipped()["clip-adapter"], sets=SMALL)
    memory = MemoryModel(compile_spec(spec, BuildOptions(device="meta", tiny=True)))
    one = memory.bill(1).peak
    sizes = [memory.max_batch_size(int(one * f)) for f in (0.99, 1.0, 1.5, 3, 10)]
    assert sizes[0] == 0 and sizes[1] == 1
    assert sizes == sorted(sizes) and sizes[-1] > sizes[2] > 1
    budget = int(one * 3)
    n = sizes[3]
    assert memory.bill(n).peak <= budget < memory.bill(n + 1).peak


@pytest.mark.parametrize("text, expected", [("24GiB", 24 * 2**30), ("24G", 24 * 2**30), ("24GB", 24 * 10**9),
                                            ("500MiB", 500 * 2**20), ("1.5 gib", 3 * 2**29), ("123456", 123456),
                                            ("64kB", 64000)])
def test_budget_units(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["24XB", "lots", "-1GiB", "GiB", ""])
def test_unknown_budget_units_are_refused(text):
    with pytest.raises(ValueError, match="GiB"):
        parse_bytes(text)


def test_build_refuses_unknown_units_with_one_line():
    result = CliRunner().invoke(main, ["build", "clip-adapter", "--memory-budget", "24 gigs"])
    assert result.exit_code == 2
    assert result.output.startswith("error: --memory-budget: cannot read the memory size '24 gigs'")
    assert "Traceback" not in result.output


def test_build_refuses_a_budget_below_the_weights_and_shows_the_bill():
    result = CliRunner().invoke(main, ["build", "clip-adapter", "--size", "tiny", "--no-flops",
                                       "--memory-budget", "1MiB", "--set", "inputs.video.frames=2"])
    assert result.exit_code == 2
    assert "is smaller than the weights alone" in result.output and "peak" in result.output


def test_build_prints_the_bill_and_the_largest_batch():
    result = CliRunner().invoke(main, ["build", "clip-adapter", "--size", "tiny", "--no-flops", "--batch-size", "2",
                                       "--memory-budget", "2GiB"])
    assert result.exit_code == 0, result.output
    assert "memory of a training step (batch 2, fp32)" in result.output
    assert "largest batch size that fits:" in result.output


def test_build_json_has_the_memory_object():
    result = CliRunner().invoke(main, ["build", "tds-clip", "--size", "tiny", "--no-flops", "--batch-size", "4",
                                       "--memory-budget", "64GiB", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    for key in ("weights", "trainable", "optimizer", "activations", "peak"):
        assert isinstance(info["memory"][key], int), key
    assert info["memory"]["batch_size"] == 4 and info["max_batch_size"] >= 4


def test_every_shipped_spec_has_a_bill():
    """The bill `composer build --batch-size 4` prints, for every shipped spec (tiny: same code, faster)."""
    for name, path in shipped().items():
        spec = load_spec(path)
        bill = MemoryModel(compile_spec(spec, BuildOptions(device="meta", tiny=True))).bill(4)
        assert bill.peak >= bill.weights > 0, name
        if any(spec.losses.values()):
            assert bill.activations > 0 and bill.trainable > 0, name


def test_a_tower_run_without_gradients_still_holds_its_forward_activations():
    """msta-text-only runs the visual tower without autograd: it keeps nothing for backward, but its forward
    holds the clips, a block's input and output at least. The model counted nothing per clip for it, and
    `composer build msta-text-only --batch-size 8` said about ten million clips fit."""
    spec = load_spec(shipped()["msta-text-only"], sets=SMALL)
    model = compile_spec(spec, BuildOptions(device="meta", tiny=True, num_classes=CLASSES))
    memory = MemoryModel(model)
    assert model.plan.grad_from["viclip.visual(video)"] is None  # the premise: a no-grad tower run
    video = model.graph.types["video"]
    tower = model.graph.shape("viclip", "visual")
    clip = 4 * 2 * 3 * 64 * 64  # float32 frames of one clip
    stream = 4 * tower.tokens(video) * tower.width  # one residual stream of one clip
    assert memory.bill(8).peak - memory.bill(4).peak >= 4 * (clip + 2 * stream)
    budget = memory.bill(1).static + 64 * 2**20
    n = memory.max_batch_size(budget)
    assert 0 < n and n * (clip + 2 * stream) <= 64 * 2**20, n
    assert memory.bill(n).peak <= budget < memory.bill(n + 1).peak
