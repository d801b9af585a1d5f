"""`extends`, `--set` and `--unset`: the merge rules of docs/language.md."""

import pytest
from conftest import write

from composer.errors import SpecError
from composer.spec.load import load_spec

BASE = """
backbones:
  clip: {family: clip, size: ViT-B/16}
components:
  adapter: {kind: bottleneck_adapter, site: "clip.visual.blocks[1-12].mlp", params: {dim: 64, scale: 0.1}}
  pool: {kind: temporal_mean}
flow:
  frames: {call: clip.visual, in: [video]}
train: {lr: 0.001, betas: [0.9, 0.999], views: {clips: 2, crops: 3}}
"""


def test_maps_merge_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", 'extends: base.yaml\ncomponents:\n  adapter: {params: {dim: 128}}\n'
                  'train: {betas: [0.9, 0.98], views: {clips: 4}}\n')
    spec = load_spec(child)
    assert spec.components["adapter"].params == {"dim": 128, "scale": 0.1}
    assert spec.components["adapter"].site == "clip.visual.blocks[1-12].mlp"
    assert spec.train.betas == (0.9, 0.98)
    assert (spec.train.views.clips, spec.train.views.crops) == (4, 3)
    assert spec.train.lr == 0.001


def test_a_new_kind_replaces_the_component_whole(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", 'extends: base.yaml\ncomponents:\n'
                  '  adapter: {kind: lora, site: "clip.visual.blocks[*].attn.qkv", params: {r: 4}}\n')
    assert load_spec(child).components["adapter"].params == {"r": 4}


def test_delete_in_yaml_text_and_command_line(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    yaml_child = write(tmp_path, "a.yaml", "extends: base.yaml\ncomponents:\n  pool: !delete\n")
    text_child = write(tmp_path, "b.comp", 'extends "base.yaml"\ndelete components.pool\n')
    assert "pool" not in load_spec(yaml_child).components
    assert "pool" not in load_spec(text_child).components
    assert "pool" not in load_spec(tmp_path / "base.yaml", unsets=["components.pool"]).components


def test_deleting_what_is_not_inherited_is_an_error(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ncomponents:\n  nothing: !delete\n")
    with pytest.raises(SpecError, match="cannot delete 'components.nothing'") as e:
        load_spec(child)
    assert e.value.problems[0].loc.line == 3


def test_set_parses_values_like_yaml(tmp_path):
    base = write(tmp_path, "base.yaml", BASE)
    spec = load_spec(base, sets=["train.lr=1e-4", "components.adapter.params.dim=8", "train.betas=[0.9, 0.98]",
                                 "components.adapter.site=clip.visual.blocks[8-12].mlp"])
    assert spec.train.lr == 1e-4 and spec.train.betas == (0.9, 0.98)
    assert spec.components["adapter"].params["dim"] == 8
    assert spec.components["adapter"].site == "clip.visual.blocks[8-12].mlp"


def test_set_errors_point_at_the_argument(tmp_path):
    base = write(tmp_path, "base.yaml", BASE)
    with pytest.raises(SpecError) as e:
        load_spec(base, sets=["train.lrr=0.1"])
    assert e.value.problems[0].loc.file == "<--set #1>"
    assert "did you mean 'lr'" in e.value.problems[0].hint


def test_inheritance_loop(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(SpecError, match="inheritance loop: a.yaml -> b.yaml -> a.yaml"):
        load_spec(tmp_path / "a.yaml")


def test_later_values_keep_their_own_locations(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "extends: base.yaml\ntrain: {lr: -1}\n")
    with pytest.raises(SpecError) as e:
        load_spec(child)
    assert e.value.problems[0].loc.file.endswith("child.yaml")
