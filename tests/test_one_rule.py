"""Rules the commands once derived each for itself live in one place (issue 21): "tiny means 64 px"
(composer/build/compile.py: tiny_sets), "--precision auto is bf16 where the GPU supports it"
(composer/build/precision.py: resolve_precision) and "--epochs/--lr over the stage's over the spec's train"
(composer/train/run_options.py: stage_schedule, by which the run trains and the model card says it trained).
A second copy would let two commands build different models, or a card describe another run.

Budget: about 3 s (reads the sources; loads three specs)."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import composer.build.compile as compile_module
from composer.build.precision import resolve_precision
from composer.spec.load import load_spec
from composer.train import card, sweep
from composer.train.run import Run
from composer.train.run_options import RunOptions

PACKAGE = Path(__file__).resolve().parents[1] / "composer"
SPEC = "specs/baselines/clip-adapter.yaml"


def places(text: str) -> list[str]:
    return sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                  if text in p.read_text(encoding="utf-8"))


def test_each_rule_is_written_once():
    assert places('"inputs.video.size=') + places("inputs.video.size={") == ["composer/build/compile.py"] * 2
    assert places("is_bf16_supported") == ["composer/build/precision.py"]
    assert places("warmup_epochs") == ["composer/spec/ir.py", "composer/train/run_options.py"]
    assert places("or train.lr") == places("or train.epochs") == []


def test_a_changed_tiny_size_is_what_a_sweep_variant_loads(monkeypatch):
    monkeypatch.setattr(compile_module, "TINY_SIZE", 96)
    spec = sweep.load_variant(sweep.Variant("v", SPEC, (), "v"), [], [], tiny=True)
    assert spec.video_input().size == 96
    assert sweep.load_variant(sweep.Variant("v", SPEC, (), "v"), ["inputs.video.size=128"], [], tiny=True) \
        .video_input().size == 128  # a --set wins


def test_auto_precision_on_the_cpu_is_fp32_and_a_named_one_stays():
    assert resolve_precision("auto", cpu=True) == "fp32"
    assert resolve_precision("fp16") == "fp16"


def _card_schedules(spec, options: dict) -> list[tuple[int, str]]:
    """(epochs, lr) of each stage as the model card's "training" line states them."""
    line = next(x for x in card._data_section({"options": options}, spec) if x.startswith("- training:"))
    return [(int(e), lr) for e, lr in re.findall(r"(\d+) epoch\(s\) at lr ([^;\s]+)", line)]


@pytest.mark.parametrize("epochs", [None, 3])
@pytest.mark.parametrize("lr", [None, 0.5])
def test_the_run_and_its_card_settle_each_stage_s_schedule_alike(epochs, lr):
    """An option given wins; else the stage's own value; else the spec's train section. FTP's two stages, one
    with its own lr and epochs, one with neither, and a spec without stages."""
    staged = load_spec("specs/papers/ftp.yaml", sets=["stages.pretrain.lr=0.004", "stages.pretrain.epochs=20"],
                       unsets=["stages.finetune.epochs"])
    plain = load_spec(SPEC)
    options = RunOptions(dataset="demo", epochs=epochs, lr=lr)
    for spec, stages in ((staged, list(staged.stages.items())), (plain, [("train", None)])):
        stand_in = SimpleNamespace(spec=spec, options=options, model=SimpleNamespace(trainable_parts=[]))
        plans = [Run._plan(stand_in, i, name, stage) for i, (name, stage) in enumerate(stages)]
        assert _card_schedules(spec, {"epochs": epochs, "lr": lr}) == [(p.epochs, f"{p.lr:g}") for p in plans]
        for plan, (_, stage) in zip(plans, stages):
            own = stage if stage is not None else spec.train
            assert plan.epochs == (epochs or own.epochs or spec.train.epochs)
            assert plan.lr == (lr or own.lr or spec.train.lr)
    assert staged.stages["pretrain"].lr == 0.004 and staged.stages["finetune"].epochs is None  # both kinds
