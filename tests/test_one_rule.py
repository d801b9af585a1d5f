"""Rules the commands once derived each for itself live in one place (issue 21): "tiny means 64 px"
(composer/compiler/compile.py: tiny_sets), "--precision auto is bf16 where the GPU supports it"
(composer/compiler/precision.py: resolve_precision), and what a run trains with: an option given over a stage's
value over the spec's train section, for seed, batch, precision, epochs, lr and warm-up
(composer/rundir/resolve.py: resolve), which the run, its model card and `composer sweep --dry-run` read.
A second copy would let two commands build different models, or a card describe another run.

Budget: about 12 s (reads the sources; loads four specs; one run constructed on the demo, no training), plus
the demo set when no other test made it first."""

import ast
import re
from dataclasses import asdict
from pathlib import Path

import pytest

import composer.compiler.compile as compile_module
import composer.rundir.resolve as resolve_module
from composer.compiler.precision import resolve_precision
from composer.rundir import card
from composer.rundir.resolve import resolve
from composer.rundir.run_options import RunOptions
from composer.spec.load import load_spec
from composer.sweep import plan as sweep
from composer.train.run import Run

PACKAGE = Path(__file__).resolve().parents[1] / "composer"
SPEC = "specs/baselines/clip-adapter.yaml"
READERS = ("composer/train/run.py", "composer/rundir/card.py", "composer/commands/sweep.py", "composer/deploy/predict.py",
           "composer/commands/bill.py")  # read resolve's record


def _reads_settled(path: Path) -> list[str]:
    """The spec's train values that resolve settles, read directly in a file's code (`train.lr`, `spec.train.lr`)."""
    return [node.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and node.attr in ("batch_size", "seed", "precision", "epochs", "lr")
            and (getattr(node.value, "id", None) == "train" or getattr(node.value, "attr", None) == "train")]


def places(text: str) -> list[str]:
    return sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                  if text in p.read_text(encoding="utf-8"))


def test_each_rule_is_written_once():
    assert places('"inputs.video.size=') + places("inputs.video.size={") == ["composer/compiler/compile.py"] * 2
    assert places("is_bf16_supported") == ["composer/compiler/precision.py"]
    assert places("warmup_epochs") == ["composer/rundir/resolve.py", "composer/spec/ir.py"]
    assert {r: _reads_settled(PACKAGE.parent / r) for r in READERS} == {r: [] for r in READERS}


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
def test_each_stage_s_schedule_is_settled_by_the_rule_and_the_card_says_it(epochs, lr):
    """An option given wins; else the stage's own value; else the spec's train section. FTP's two stages, one
    with its own lr and epochs, one with neither, and a spec without stages."""
    staged = load_spec("specs/papers/ftp.yaml", sets=["stages.pretrain.lr=0.004", "stages.pretrain.epochs=20"],
                       unsets=["stages.finetune.epochs"])
    assert staged.stages["pretrain"].lr == 0.004 and staged.stages["finetune"].epochs is None  # both kinds
    plain = load_spec(SPEC)
    options = RunOptions(dataset="demo", epochs=epochs, lr=lr)
    for spec, stages in ((staged, list(staged.stages.values())), (plain, [plain.train])):
        settled = resolve(spec, options)
        assert _card_schedules(spec, asdict(options)) == [(s.epochs, f"{s.lr:g}") for s in settled.schedules]
        for schedule, own in zip(settled.schedules, stages, strict=True):
            assert schedule.epochs == (epochs or own.epochs or spec.train.epochs)
            assert schedule.lr == (lr or own.lr or spec.train.lr)
            assert schedule.warmup == spec.train.warmup_epochs


def test_a_changed_rule_is_what_the_run_and_its_card_follow(monkeypatch, demo_root, tmp_path):
    """Change the rule in resolve (the spec's train section over every option) and every reader follows it."""
    real = resolve_module.stage_schedule
    monkeypatch.setattr(resolve_module, "stage_schedule", lambda train, stage, epochs=None, lr=None: real(train, stage))
    options = RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=2, lr=5e-4, workers=0,
                         out=str(tmp_path / "runs"), log_with=["none"],
                         sets=["inputs.video.size=32", "inputs.video.frames=4"])
    job = Run(SPEC, options)
    plan = job._plan(0, "train", None)
    assert (plan.epochs, plan.lr) == (job.spec.train.epochs, job.spec.train.lr) == (30, 1e-3)
    assert _card_schedules(job.spec, asdict(options)) == [(30, "0.001")]
