"""The plan recomputes only what does not fit the memory budget (composer/compiler/budget.py)."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_batch

from composer.cli import main
from composer.compiler.budget import choose_recompute
from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.memory import MemoryModel
from composer.recompute import kept_for_backward
from composer.spec.load import load_spec
from composer.spec.shipped import shipped

SETS = ["inputs.video.size=64", "inputs.video.frames=2"]
SPEC = "dinov2-dora-linear"  # DoRA from the first block: every frozen block above it is eligible
CLASSES = 3
BATCH = 2


def _meta(recompute=True):
    spec = load_spec(shipped()[SPEC], sets=SETS)
    return compile_spec(spec, BuildOptions(device="meta", tiny=True, num_classes=CLASSES, recompute=recompute))


def _peak(recompute) -> int:
    return MemoryModel(_meta(recompute)).bill(BATCH).peak


@pytest.fixture(scope="module")
def peaks() -> tuple[int, int]:
    stored, recomputed = _peak(False), _peak(True)
    assert recomputed < stored  # the spec must have something worth recomputing for these tests to mean anything
    return stored, recomputed


def test_a_large_budget_recomputes_nothing_and_keeps_what_the_no_recompute_build_keeps(peaks):
    model = _meta()
    choice = choose_recompute(model, "fp32", BATCH, 2 * peaks[0], "test")
    assert choice.fits and not any(model.plan.recompute.values())
    assert MemoryModel(model).bill(BATCH).activations == MemoryModel(_meta(False)).bill(BATCH).activations
    assert any("recomputes nothing" in line for line in model.plan.describe(model.graph))


def test_a_large_budget_keeps_on_cpu_the_bytes_of_the_no_recompute_build(peaks):
    spec = load_spec(shipped()[SPEC], sets=SETS)
    kept = []
    for recompute in ("auto", False):
        torch.manual_seed(0)
        model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=CLASSES))
        if recompute == "auto":
            meta = _meta()
            choose_recompute(meta, "fp32", BATCH, 2 * peaks[0], "test")
            model.set_recompute(meta.plan.choice)
        else:
            model.set_recompute(False)
        model.train()
        batch = tiny_batch(model, clips=BATCH, classes=CLASSES)
        kept.append(kept_for_backward(lambda: model(batch)["loss"], model))
    assert kept[0] == kept[1]


def test_a_small_budget_recomputes_a_minimal_set_of_blocks(peaks):
    stored, recomputed = peaks
    budget = (stored + recomputed) // 2
    model = _meta()
    choice = choose_recompute(model, "fp32", BATCH, budget, "test")
    chosen = {r: b for r, b in model.plan.recompute.items() if b}
    assert choice.fits and chosen and choice.peak <= budget
    assert MemoryModel(model).bill(BATCH).peak == choice.peak <= budget
    everything = _meta().plan.recompute
    assert sum(map(len, chosen.values())) < sum(map(len, everything.values()))  # not simply all of them
    for run_id, blocks in chosen.items():  # removing any one recomputed block would exceed the budget
        for block in blocks:
            fewer = dict(chosen, **{run_id: blocks - {block}})
            model.set_recompute(type(choice.recompute)(fewer, frozenset()))
            assert MemoryModel(model).bill(BATCH).peak > budget, (run_id, block)
    model.set_recompute(choice.recompute)
    assert any("recomputes blocks" in line and "the budget leaves" in line
               for line in model.plan.describe(model.graph))


def test_a_budget_nothing_fits_says_so(peaks):
    model = _meta()
    choice = choose_recompute(model, "fp32", BATCH, peaks[1] - 1, "test")
    assert not choice.fits and choice.peak > peaks[1] - 1
    assert any("does not fit" in line for line in model.plan.describe(model.graph))


@pytest.mark.parametrize("option, recomputes", [(["--recompute", "all"], True), (["--recompute", "none"], False),
                                                (["--no-recompute"], False)])
def test_build_recompute_all_and_none_remain(option, recomputes):
    result = CliRunner().invoke(main, ["build", SPEC, "--size", "tiny", "--no-flops", "--json", "--classes", "3",
                                       *[a for s in SETS for a in ("--set", s)], *option])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)["plan"]
    assert any("recomputed in the backward pass" in line for line in plan) == recomputes


def test_build_says_which_blocks_it_recomputes_under_a_small_budget(peaks):
    budget = (peaks[0] + peaks[1]) // 2
    result = CliRunner().invoke(main, ["build", SPEC, "--size", "tiny", "--no-flops", "--classes", "3",
                                       "--batch-size", str(BATCH), "--memory-budget", str(budget),
                                       *[a for s in SETS for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert "recomputes blocks" in result.output and "the budget leaves" in result.output


def test_run_chooses_with_the_device_budget_and_refuses_a_step_that_cannot_fit(peaks, monkeypatch):
    from composer.errors import DataError
    from composer.rundir.run_options import RunOptions
    from composer.train import stages
    from composer.train.stages import recompute_for

    spec = load_spec(shipped()[SPEC], sets=SETS)
    assert recompute_for(spec, RunOptions("demo", recompute="all", tiny=True), BATCH, "fp32", CLASSES) is True
    assert recompute_for(spec, RunOptions("demo", recompute="none", tiny=True), BATCH, "fp32", CLASSES) is False
    old_record = RunOptions("demo", recompute=True, tiny=True)  # recorded before --recompute auto
    assert recompute_for(spec, old_record, BATCH, "fp32", CLASSES) is True
    monkeypatch.setattr(stages, "default_budget", lambda: (2 * peaks[0], "plenty"))
    choice = recompute_for(spec, RunOptions("demo", tiny=True), BATCH, "fp32", CLASSES)
    assert not any(choice.blocks.values())
    monkeypatch.setattr(stages, "default_budget", lambda: (peaks[1] - 1, "a small GPU"))
    with pytest.raises(DataError, match="even recomputing every frozen block"):
        recompute_for(spec, RunOptions("demo", tiny=True), BATCH, "fp32", CLASSES)


def test_each_stage_is_planned_for_its_own_step(monkeypatch, tmp_path):
    """A run planned once kept that plan in every stage. Here the spec's own losses are none (each stage names
    its own, as FTP's do), so the single plan priced no training step and recomputed nothing; the second stage,
    training an adapter in block 1, then stored every block above it, over the budget. Each stage now gets
    the plan of its own step, chosen before anything runs."""
    from composer.graph.plan import NONE
    from composer.train import stages
    from composer.train.run import RunOptions
    from composer.train.stages import recompute_for, stages_of

    child = tmp_path / "staged.yaml"
    child.write_text("extends: clip-adapter\nname: staged\nlosses: !delete\ncomponents:\n  adapter: !delete\n"
                     "  late: {kind: bottleneck_adapter, site: 'clip.visual.blocks[12].mlp', use: parallel}\n"
                     "  early: {kind: bottleneck_adapter, site: 'clip.visual.blocks[1].mlp', use: parallel}\n"
                     "stages:\n  first: {trains: [late], losses: {ce_loss: 1.0}}\n"
                     "  second: {trains: [early], losses: {ce_loss: 1.0}}\n")
    spec = load_spec(str(child), sets=SETS)
    second = dict(spec.stages["second"].losses)

    def peak(choice) -> int:
        meta = compile_spec(spec, BuildOptions(device="meta", tiny=True, num_classes=CLASSES))
        meta.set_trainable({"early"})
        meta.set_recompute(choice)
        return MemoryModel(meta, "fp32", second).bill(BATCH).peak

    stored, recomputed = peak(NONE), peak(True)
    assert recomputed < stored
    budget = (stored + recomputed) // 2
    monkeypatch.setattr(stages, "default_budget", lambda: (budget, "a small GPU"))
    once = recompute_for(spec, RunOptions("demo", tiny=True), BATCH, "fp32", CLASSES)
    assert peak(once) > budget  # the old single plan: over the budget in the second stage
    choices = [recompute_for(spec, RunOptions("demo", tiny=True), BATCH, "fp32", CLASSES, stage)
               for stage in stages_of(spec)]
    assert peak(choices[1]) <= budget and any(choices[1].blocks.values())
    monkeypatch.setattr(stages, "default_budget", lambda: (recomputed - 1, "a smaller GPU"))
    from composer.errors import DataError

    with pytest.raises(DataError, match="a training step of stage second"):
        recompute_for(spec, RunOptions("demo", tiny=True), BATCH, "fp32", CLASSES, ("second", spec.stages["second"]))
