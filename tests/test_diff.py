"""`composer diff A B`: changed paths with where each side set them, and what the change does to the model."""

import io
import json

import pytest
from click.testing import CliRunner
from conftest import write
from rich.console import Console

from composer.cli import main
from composer.compiler.diff import render
from composer.compiler.memory_sizes import format_bytes
from composer.spec.diff import diff_specs
from composer.spec.load import load_spec
from composer.spec.shipped import ROOT


def run(*args):
    return CliRunner().invoke(main, list(args))


def by_path(result: dict) -> dict:
    return {c["path"]: c for c in result["changes"]}


@pytest.fixture(scope="module")
def msta_few_shot() -> dict:
    """`composer diff msta msta-few-shot --model --json` at full size, and both `composer build --json` reports."""
    result = run("diff", "msta", "msta-few-shot", "--model", "--json")
    assert result.exit_code == 0, result.output
    builds = [run("build", name, "--json") for name in ("msta", "msta-few-shot")]
    assert all(b.exit_code == 0 for b in builds), builds[0].output + builds[1].output
    return {"diff": json.loads(result.output), "a": json.loads(builds[0].output), "b": json.loads(builds[1].output)}


def test_json_shows_the_rank_and_layer_change_with_both_files(msta_few_shot):
    changes = by_path(msta_few_shot["diff"])
    dim = changes["components.msta.params.dim"]
    assert (dim["change"], dim["old"], dim["new"]) == ("changed", 256, 128)
    assert dim["old_at"].endswith("papers/msta.yaml:16:19") and dim["new_at"].endswith("msta-few-shot.yaml:8:19")
    assert "components.msta.site" not in changes  # per element, not the whole list
    visual, text = changes["components.msta.site[0]"], changes["components.msta.site[1]"]
    assert (visual["old"], visual["new"]) == ("viclip.visual.blocks[1-12].block", "viclip.visual.blocks[8-12].block")
    assert (text["old"], text["new"]) == ("viclip.text.blocks[1-12].block", "viclip.text.blocks[8-12].block")
    assert visual["new_at"].endswith("msta-few-shot.yaml:7:13") and text["new_at"].endswith("msta-few-shot.yaml:7:49")
    assert changes["train.epochs"]["new"] == 50
    reported = changes["reported"]  # deleted by the child: located at its `!delete`
    assert reported["change"] == "removed" and reported["new_at"].endswith("msta-few-shot.yaml:10:11")
    assert "components.msta.params.scale" not in changes  # inherited unchanged


def test_json_model_numbers_are_the_builds(msta_few_shot):
    model, a, b = msta_few_shot["diff"]["model"], msta_few_shot["a"], msta_few_shot["b"]
    assert model["trainable_params"] == {"old": a["trainable_params"], "new": b["trainable_params"],
                                         "delta": b["trainable_params"] - a["trainable_params"]}
    assert model["trainable_params"]["old"] == 8_712_192 and model["trainable_params"]["delta"] < 0
    assert model["total_params"]["new"] == b["total_params"]
    assert (model["gflops"]["old"], model["gflops"]["new"]) == (a["gflops"], b["gflops"])
    assert model["params_by_part"] == {"msta": {
        "trainable": {"old": 8_712_192, "new": b["trainable_params"], "delta": b["trainable_params"] - 8_712_192},
        "total": {"old": 8_712_192, "new": b["trainable_params"], "delta": b["trainable_params"] - 8_712_192}}}
    moved = {(m["tower"], m["change"]): (m["old"][0]["layers"], m["new"][0]["layers"]) for m in model["attachments"]}
    assert moved == {("visual", "moved"): (list(range(1, 13)), list(range(8, 13))),
                     ("text", "moved"): (list(range(1, 13)), list(range(8, 13)))}
    assert msta_few_shot["diff"]["identical"] is False


def test_text_output_shows_changes_locations_and_signed_deltas(msta_few_shot):
    result = run("diff", "msta", "msta-few-shot", "--no-flops")
    assert result.exit_code == 0, result.output
    out = result.output
    row = next(line for line in out.splitlines() if "components.msta.params.dim" in line)
    assert "256" in row and "128" in row and "msta.yaml:16:19" in row and "msta-few-shot.yaml:8:19" in row
    row = next(line for line in out.splitlines() if "components.msta.site[0]" in line)
    assert "visual.blocks[1-12]" in row and "visual.blocks[8-12]" in row
    delta = msta_few_shot["b"]["trainable_params"] - msta_few_shot["a"]["trainable_params"]
    row = next(line for line in out.splitlines() if "trainable parameters" in line)
    assert "8,712,192" in row and f"{delta:+,}" in row
    assert "moved" in out and "deleted at" in out


def test_set_options_per_side_and_shared(tmp_path):
    result = run("diff", "clip-adapter", "clip-adapter", "--size", "tiny", "--no-flops", "--json",
                 "--set", "train.epochs=3", "--set-b", "components.adapter.params.dim=16",
                 "--unset-a", "components.adapter.params.scale")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    changes = by_path(info)
    assert set(changes) == {"components.adapter.params.dim", "components.adapter.params.scale"}
    dim = changes["components.adapter.params.dim"]
    assert (dim["old"], dim["new"], dim["new_at"]) == (64, 16, "<--set-b #1>:1:1")
    assert dim["old_at"].endswith("clip-adapter.yaml:13:19")
    scale = changes["components.adapter.params.scale"]
    assert (scale["change"], scale["old"], scale["new"], scale["old_at"]) == ("added", None, 0.1, "<--unset-a #1>:1:1")
    assert info["model"]["trainable_params"]["delta"] < 0


def test_a_default_value_has_no_location():
    a, b = load_spec("clip-adapter"), load_spec("clip-adapter", ["train.grad_clip=2.0"])
    (change,) = diff_specs(a, b)
    assert (change.dotted, change.old, change.new, change.old_at) == ("train.grad_clip", 1.0, 2.0, None)
    assert str(change.new_at) == "<--set #1>:1:1"


def test_text_syntax_locations_of_a_set_a_delete_and_a_block(tmp_path):
    base = ROOT / "papers" / "msta.comp"
    child = write(tmp_path, "child.comp", f'extends "{base}"\nset components.msta.params.dim = 64\ndelete reported\n')
    dim, reported = diff_specs(load_spec(base), load_spec(child))
    assert (dim.dotted, dim.old, dim.new, str(dim.new_at)) == ("components.msta.params.dim", 256, 64,
                                                                f"{child}:2:34")
    assert dim.old_at.file == str(base) and dim.old_at.line == 15
    assert (reported.dotted, reported.change, str(reported.new_at)) == ("reported", "removed", f"{child}:3:8")
    assert reported.old_at.file == str(base) and reported.old_at.line == 57  # the block's first entry


def test_identical_specs_say_no_differences():
    result = run("diff", "specs/papers/msta.yaml", "specs/papers/msta.comp", "--size", "tiny", "--no-flops",
                 "--exit-code")
    assert result.exit_code == 0, result.output
    assert "no differences" in result.output and "trainable" not in result.output
    info = json.loads(run("diff", "msta", "specs/papers/msta.comp", "--size", "tiny", "--no-flops", "--json").output)
    assert info["identical"] is True and info["changes"] == [] and info["model"]["changed"] is False


def test_exit_code_one_when_different():
    result = run("diff", "clip-adapter", "clip-adapter", "--size", "tiny", "--no-flops", "--exit-code",
                 "--set-b", "train.lr=0.01")
    assert result.exit_code == 1 and "train.lr" in result.output and "the built model is the same" in result.output


def test_attachment_removed_by_a_shipped_ablation():
    result = run("diff", "msta", "specs/papers/ablations/msta-text-only.yaml", "--size", "tiny", "--no-flops",
                 "--json")
    assert result.exit_code == 0, result.output
    model = json.loads(result.output)["model"]
    (removed,) = model["attachments"]
    assert (removed["component"], removed["tower"], removed["change"], removed["new"]) == ("msta", "visual",
                                                                                           "removed", None)
    assert removed["old"][0]["site"] == "viclip.visual.blocks[1-12].block"
    assert model["trainable_params"]["delta"] < 0


def test_component_added_in_a_child_spec(tmp_path):
    child = write(tmp_path, "child.yaml", "extends: clip-adapter\nname: child\ncomponents:\n"
                  "  extra: {kind: bottleneck_adapter, site: 'clip.visual.blocks[1-4].mlp', use: parallel,"
                  " params: {dim: 8}}\n")
    result = run("diff", "clip-adapter", str(child), "--size", "tiny", "--no-flops", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    extra = by_path(info)["components.extra"]
    assert extra["change"] == "added" and extra["new_at"] == f"{child}:4:10" and extra["old"] is None
    (added,) = info["model"]["attachments"]
    assert (added["component"], added["change"], added["new"][0]["layers"]) == ("extra", "added", [1, 2, 3, 4])
    part = info["model"]["params_by_part"]["extra"]["trainable"]
    assert part["old"] == 0 and part["new"] > 0 and info["model"]["trainable_params"]["delta"] == part["new"]


def test_a_broken_spec_gives_its_located_error(tmp_path):
    broken = write(tmp_path, "broken.yaml", "extends: clip-adapter\ntrain: {epochs: 0}\n")
    result = run("diff", "clip-adapter", str(broken), "--size", "tiny", "--no-flops")
    assert result.exit_code == 2
    assert f"{broken}:2:" in result.output and "error:" in result.output and "Traceback" not in result.output


def test_an_unknown_shipped_name_says_did_you_mean():
    result = run("diff", "msat", "msta")
    assert result.exit_code == 2 and "did you mean" in result.output and "msta" in result.output


def test_memory_bills_are_the_builds_at_one_budget():
    options = ["--size", "tiny", "--no-flops", "--batch-size", "2", "--memory-budget", "1GiB", "--json"]
    result = run("diff", "clip-adapter", "clip-adapter", "--set-b", "components.adapter.params.dim=256", *options)
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    memory = info["model"]["memory"]
    new = json.loads(run("build", "clip-adapter", "--set", "components.adapter.params.dim=256", *options).output)
    assert memory["new"] == new["memory"] and memory["max_batch_size"]["new"] == new["max_batch_size"]
    assert memory["peak"]["delta"] == new["memory"]["peak"] - memory["old"]["peak"] > 0
    assert memory["memory_budget"] == 2**30 and memory["memory_budget_source"] == "--memory-budget"
    out = io.StringIO()
    render(info, Console(file=out, width=200))
    row = next(line for line in out.getvalue().splitlines() if "peak memory (batch 2, " in line)
    assert row.rstrip().endswith(f"+{format_bytes(memory['peak']['delta'])}")


def test_a_boolean_is_not_the_number_one_nor_an_int_a_float(tmp_path):
    """Python says True == 1 == 1.0; a kind's params receive what was written, so each is a change."""
    base = write(tmp_path, "base.yaml", "extends: clip-adapter\nname: base\n"
                 "components: {adapter: {params: {dim: 64, flag: true, ratio: 1}}}\n")
    other = write(tmp_path, "other.yaml", "extends: clip-adapter\nname: base\n"
                  "components: {adapter: {params: {dim: 64, flag: 1, ratio: 1.0}}}\n")
    changes = {c.dotted: c for c in diff_specs(load_spec(base), load_spec(other))}
    assert set(changes) == {"components.adapter.params.flag", "components.adapter.params.ratio"}
    flag, ratio = changes["components.adapter.params.flag"], changes["components.adapter.params.ratio"]
    assert flag.old is True and flag.new == 1 and not isinstance(flag.new, bool)
    assert isinstance(ratio.old, int) and isinstance(ratio.new, float)
    assert diff_specs(load_spec(base), load_spec(base)) == []


def test_lists_are_compared_element_by_element(tmp_path):
    """One changed, one added element: two rows at their positions, each located at its own element."""
    child = write(tmp_path, "child.yaml", "extends: msta\ncomponents:\n  msta:\n    site:\n"
                  "      - viclip.visual.blocks[1-12].block\n      - viclip.text.blocks[2-12].block\n"
                  "      - viclip.text.blocks[1].block\n")
    changes = diff_specs(load_spec("msta"), load_spec(child))
    assert [(c.dotted, c.change, c.old, c.new) for c in changes] == [
        ("components.msta.site[1]", "changed", "viclip.text.blocks[1-12].block", "viclip.text.blocks[2-12].block"),
        ("components.msta.site[2]", "added", None, "viclip.text.blocks[1].block")]
    assert (changes[0].new_at.line, changes[1].new_at.line) == (6, 7)
    result = run("diff", "msta", str(child), "--size", "tiny", "--no-flops", "--json")
    assert result.exit_code == 0, result.output
    assert [c["path"] for c in json.loads(result.output)["changes"]] == ["components.msta.site[1]",
                                                                       "components.msta.site[2]"]


def test_without_model_options_only_the_specs_are_compared():
    """The spec part alone: checked as validate checks, nothing built (tests/test_declared.py: no torch)."""
    info = json.loads(run("diff", "msta", "msta-few-shot", "--json").output)
    assert "model" not in info and info["identical"] is False
    assert by_path(info)["components.msta.params.dim"]["new"] == 128
    result = run("diff", "clip-adapter", "clip-adapter", "--exit-code")
    assert result.exit_code == 0 and "no differences" in result.output
    broken = run("diff", "clip-adapter", "clip-adapter", "--set-b", "components.adapter.site=clip.visual.blocks[0].mlp")
    assert broken.exit_code == 2 and "layer 0 does not exist" in broken.output
