"""The pre-flight check (composer/train/preflight.py): a first batch whose loss is not finite, or whose logits are
saturated on every clip, is refused before training with the flow step responsible named; a normal spec and
every shipped spec (tiny size, random and demo weights) pass it."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import SPECS

from composer.cli import main
from composer.compiler.compile import BuildOptions, compile_spec
from composer.data.demo import CLASSES
from composer.errors import SpecError
from composer.spec.load import load_spec
from composer.train.loop import inputs
from composer.train.preflight import check_first_batch, first_batch
from composer.train.run import Run, RunOptions

ADAPTER = "specs/baselines/clip-adapter.yaml"  # cosine_logits (scale 100) over CLIP's frame mean
SMALL = ["inputs.video.size=64", "inputs.video.frames=2"]


def model_of(path, weights=None):
    """The spec at tiny size, 2 frames (4 for VideoMAE, whose tubelets take 2), 64 px."""
    frames = 4 if any(b.family == "videomae" for b in load_spec(path).backbones.values()) else 2
    spec = load_spec(path, sets=[*SMALL, f"inputs.video.frames={frames}"])
    torch.manual_seed(0)
    return compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=len(CLASSES), weights=weights))


@pytest.fixture(scope="module")
def demo(demo_root):
    from composer.data.datasets import load_dataset
    from composer.data.protocols import make_task

    index = load_dataset("demo", demo_root)
    return make_task("supervised", index, None, 0).train, index.files


def given(model, demo) -> dict:
    """The first training batch of a tiny demo run of the model's spec (4 clips), as the run's check takes it."""
    from composer.data.clips import ClipConfig

    video = model.spec.video_input()
    clips = first_batch(demo[0], ClipConfig(video.frames, video.size, video.window, flip=False), 0, 4, "cpu")
    return inputs(model.spec, clips["video"], clips["label"], CLASSES)


def degenerate(out: dict) -> dict:
    """Every clip's embedding on the first class's, and the class embeddings one-hot: a degenerate input that a
    cosine head of scale 100 turns into logits 100 apart (the meta-device pricing of a run is left alone)."""
    for name, rows in (("class_emb", None), ("clip_emb", 1)):
        x = out.get(name)
        if x is not None and x.device.type != "meta":
            eye = torch.eye(len(CLASSES), x.shape[-1], dtype=x.dtype)
            out[name] = eye if rows is None else eye[:rows].expand_as(x)
    return out


def test_a_normal_spec_passes(demo):
    model = model_of(ADAPTER)
    check_first_batch(model, given(model, demo))


def test_a_cosine_head_saturated_by_a_degenerate_input_is_refused_by_name(demo, monkeypatch):
    model = model_of(ADAPTER)
    original = model.run_node
    monkeypatch.setattr(model, "run_node", lambda node, values: degenerate(original(node, values)))
    with pytest.raises(SpecError, match=r"`logits` are saturated on every clip.*component `head` \(cosine_logits"):
        check_first_batch(model, given(model, demo))


def test_a_nan_from_a_part_is_refused_naming_the_first_part_that_makes_it(demo):
    model = model_of("specs/baselines/clip-temporal-transformer.yaml")
    with torch.no_grad():
        model.components["head"].fc.weight[0, 0] = float("nan")
    with pytest.raises(SpecError, match=r"`ce_loss` is nan.*comes from component `head` \(linear_head") as e:
        check_first_batch(model, given(model, demo))
    assert e.value.problems[0].loc.line > 0  # located at the head's flow step in the spec


def test_a_nan_inside_a_tower_names_the_run_and_its_attached_parts(demo):
    model = model_of(ADAPTER)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if n.startswith("components.adapter.")).fill_(float("nan"))
    with pytest.raises(SpecError, match=r"tower run clip.visual.*attached: adapter"):
        check_first_batch(model, given(model, demo))


def test_the_check_changes_nothing(demo):
    """No gradient, no generator drawn from, the model's mode kept: a checked run trains as an unchecked one."""
    model = model_of(ADAPTER).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_first_batch(model, given(model, demo))
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in model.parameters())


def options(demo_root, tmp_path) -> RunOptions:
    return RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=1, max_steps=1, batch_size=4,
                      workers=0, out=str(tmp_path / "runs"), sets=list(SMALL), seed=0)


def test_composer_run_refuses_a_nan_loss_with_status_2_before_training(demo_root, tmp_path, monkeypatch):
    from composer.components.losses.cross_entropy_module import CrossEntropy

    original = CrossEntropy.forward
    monkeypatch.setattr(CrossEntropy, "forward", lambda self, logits, label: original(self, logits, label) * torch.nan)
    result = CliRunner().invoke(main, ["run", ADAPTER, "--dataset", "demo", "--data-root", str(demo_root), "--size",
                                       "tiny", "--workers", "0", "--batch-size", "4", "--max-steps", "1", "--out",
                                       str(tmp_path / "runs")] + [a for s in SMALL for a in ("--set", s)])
    assert result.exit_code == 2, result.output
    assert "`ce_loss` is nan on the first batch" in result.output and "component `ce` (cross_entropy" in result.output
    assert "Traceback" not in result.output
    assert not list((tmp_path / "runs").rglob("run.json"))  # nothing recorded, nothing trained


def test_a_run_refuses_saturated_logits_before_training(demo_root, tmp_path, monkeypatch):
    from composer.compiler.model import ComposedModel

    original = ComposedModel.run_node
    monkeypatch.setattr(ComposedModel, "run_node", lambda self, node, values: degenerate(original(self, node, values)))
    with pytest.raises(SpecError, match="saturated on every clip.*component `head`"):
        Run(ADAPTER, options(demo_root, tmp_path))
    assert not list((tmp_path / "runs").rglob("run.json"))


def test_every_shipped_spec_passes_on_demo_weights(demo):
    """Every shipped spec (the .comp twins have the same IR as their YAML, test_frontends.py) at tiny size on demo
    weights, on the first batch of a demo run (random weights: tests/test_overfit.py checks each spec's batch before
    training it). The least and the greatest clip entropy of each are printed (-s) for the record."""
    seen = {}
    for path in (p for p in SPECS if p.suffix != ".comp"):
        model = model_of(path, "demo")
        model.use_dataset_files(demo[1])
        if not model.trainable_parts:
            continue
        clips = given(model, demo)
        check_first_batch(model, clips)
        with torch.no_grad():
            logits = model(clips, outputs=[model.graph.predict])[model.graph.predict].float()
        entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
        seen[model.spec.name] = [round(entropy.min().item(), 4), round(entropy.max().item(), 4)]
    print(json.dumps({"clip entropy (least, greatest), demo weights": seen}))
