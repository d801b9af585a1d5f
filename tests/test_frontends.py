"""The two front ends: safe YAML with positions, the text grammar, and lossless conversion between them."""

import pytest
from conftest import SPECS, write

from composer.errors import SpecError
from composer.spec.load import load_spec, read_document
from composer.spec.printer import to_text, to_yaml
from composer.spec.text_front import read_text
from composer.spec.yaml_front import read_yaml


def test_yaml_keeps_no_and_off_as_strings_and_reads_1e_minus_3_as_float():
    doc = read_yaml("a: no\nb: off\nc: 1e-3\nd: yes\ne: true\nf: '1'\n", "x.yaml")
    assert doc.data == {"a": "no", "b": "off", "c": 0.001, "d": "yes", "e": True, "f": "1"}


def test_yaml_never_constructs_objects():
    with pytest.raises(SpecError, match="tag"):
        read_yaml("a: !!python/object/apply:os.system ['echo hacked']\n", "x.yaml")


def test_yaml_duplicate_keys_are_errors_with_both_places():
    with pytest.raises(SpecError) as e:
        read_yaml("train:\n  lr: 1\n  lr: 2\n", "x.yaml")
    problem = e.value.problems[0]
    assert "duplicate key 'lr'" in problem.message
    assert (problem.loc.line, problem.loc.col) == (3, 3)
    assert "line 2" in problem.hint


def test_every_ir_node_knows_where_it_was_written(tmp_path):
    path = write(tmp_path, "s.yaml", "backbones:\n  clip: {family: clip, size: ViT-B/16}\n"
                 "components:\n  pool:\n    kind: temporal_mean\n")
    spec = load_spec(path)
    assert (spec.backbones["clip"].loc.line, spec.backbones["clip"].loc.col) == (2, 9)
    assert spec.components["pool"].loc.line == 5
    assert spec.loc_of("components", "pool", "kind").col == 11


def test_text_syntax_lowers_to_the_same_document_as_yaml():
    text = read_text('backbone clip: clip(size="ViT-B/16")\ncomponent a: bottleneck_adapter(dim=8) '
                     'at clip.visual.blocks[1-3].mlp sequential frozen\nflow { x = clip.visual(video) }\n'
                     'losses { x = 0.5 }\ntrain { lr = 1e-4, views = {clips = 4, crops = 3} }\n', "t.comp")
    yaml = read_yaml("backbones:\n  clip: {family: clip, size: ViT-B/16}\ncomponents:\n  a:\n"
                     "    kind: bottleneck_adapter\n    params: {dim: 8}\n    site: clip.visual.blocks[1-3].mlp\n"
                     "    use: sequential\n    frozen: true\nflow:\n  x: {call: clip.visual, in: [video]}\n"
                     "losses: {x: 0.5}\ntrain: {lr: 1.0e-4, views: {clips: 4, crops: 3}}\n", "y.yaml")
    assert text.data == yaml.data


def test_text_positions_point_at_the_token():
    doc = read_text('\n\ncomponent a: lora(r=4) at clip.visual.blocks[*].attn.qkv\n', "t.comp")
    loc = doc.where.value(("components", "a", "site"))
    assert (loc.line, loc.col) == (3, 27)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_round_trip_text_yaml_text(path):
    doc = read_document(path)
    text = to_text(doc.data)
    from_text = read_text(text, "a.comp")
    yaml_text = to_yaml(from_text.data)
    from_yaml = read_yaml(yaml_text, "b.yaml")
    assert from_text.data == doc.data == from_yaml.data
    assert to_text(from_yaml.data) == text


def test_round_trip_keeps_overrides_and_deletions(tmp_path):
    source = ('extends "base.yaml"\nset components.adapter.params.dim = 128\ndelete components.pool\n'
              'set train.views.clips = 4\n')
    doc = read_text(source, "child.comp")
    again = read_text(to_text(read_yaml(to_yaml(doc.data), "c.yaml").data), "d.comp")
    assert again.data == doc.data


PAIRS = [(p.with_suffix(".yaml"), p) for p in SPECS if p.suffix == ".comp" and p.with_suffix(".yaml").exists()]


def test_every_paper_ships_in_the_text_syntax_too():
    papers = {p.stem for p in SPECS if p.parent.name == "papers" and p.suffix == ".yaml" and "-" in p.stem}
    assert {"msta", "tds-clip", "temporal-prompts-dual-text", "ftp", "dinov2-clip-dora"} <= {y.stem for y, _ in PAIRS}
    assert papers


@pytest.mark.parametrize("yaml_path, text_path", PAIRS, ids=lambda p: p.name)
def test_yaml_and_text_specs_validate_to_the_same_ir(yaml_path, text_path):
    assert load_spec(yaml_path).model_dump() == load_spec(text_path).model_dump()
