"""`composer fmt` keeps what a person wrote: comments and the spelling of numbers, in both directions."""

import pytest
from click.testing import CliRunner
from conftest import SPECS, write

from composer.cli import main
from composer.spec.document import Comment, Document, SourceMap
from composer.spec.load import read_document
from composer.spec.printer import write as emit
from composer.spec.text_front import read_text
from composer.spec.yaml_front import read_yaml


def texts(doc: Document) -> list[str]:
    """Every comment of a document, whatever it is attached to."""
    found = [c for note in doc.comments.values() for c in note.before + ([note.after] if note.after else [])]
    return sorted(found + doc.trailing)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_keep_their_comments_both_ways(path):
    doc = read_document(path)
    assert texts(doc), f"{path.name} has comments; the reader found none"
    y1 = emit(doc, "yaml")
    t1 = emit(read_yaml(y1, "a.yaml"), "text")
    y2 = emit(read_text(t1, "b.comp"), "yaml")
    t2 = emit(read_yaml(y2, "c.yaml"), "text")
    assert t1 == t2  # (YAML may order a component's fields differently after the text syntax)
    for again in (read_yaml(y1, "a.yaml"), read_text(t1, "b.comp"), read_yaml(y2, "c.yaml")):
        assert again.data == doc.data
        assert texts(again) == texts(doc)


YAML = """\
# a header about the spec
name: demo   # the name
components:
  # the adapter
  adapter:
    kind: bottleneck_adapter   # the kind
    params: {dim: 64, scale: 5.0e-3}
    site: clip.visual.blocks[1-12].mlp
train:
  # learning rate, as in the paper
  lr: 1e-3  # peak
  steps: 0x10
  epochs: +5
  betas: [0.9, 0.98]  # Adam
  views:
    - 4   # clips
    # crops
    - 3
reported: !delete  # not this setting
# the end
"""


def test_yaml_comments_in_every_position_survive_yaml_to_yaml():
    doc = read_yaml(YAML, "s.yaml")
    assert doc.comments[("name",)] == Comment(["# a header about the spec"], "# the name")
    assert doc.comments[("components", "adapter", "kind")].after == "# the kind"
    assert doc.comments[("train", "views", 0)].after == "# clips"
    assert doc.comments[("train", "views", 1)].before == ["# crops"]
    assert doc.trailing == ["# the end"]
    out = emit(doc, "yaml")
    again = read_yaml(out, "t.yaml")
    assert again.data == doc.data and again.comments == doc.comments and again.trailing == doc.trailing
    for spelled in ("lr: 1e-3  # peak", "scale: 5.0e-3", "steps: 0x10", "epochs: +5", "reported: !delete"):
        assert spelled in out


def test_yaml_to_text_to_yaml_keeps_every_comment_and_the_spellings_text_can_read():
    doc = read_yaml(YAML, "s.yaml")
    text = emit(doc, "text")
    assert "lr = 1e-3  # peak" in text and "scale=5.0e-3" in text
    assert "steps = 16" in text  # the text syntax has no hexadecimal: the value, never a wrong number
    assert '# the kind\ncomponent adapter:' in text  # a part of a one-line statement comments above it
    back = read_text(text, "s.comp")
    assert back.data == doc.data and texts(back) == texts(doc)
    yaml_again = read_yaml(emit(back, "yaml"), "u.yaml")
    assert yaml_again.data == doc.data and texts(yaml_again) == texts(doc)
    assert yaml_again.comments[("train", "lr")] == doc.comments[("train", "lr")]


TEXT = """\
# header
spec "demo"  # its name

# the backbone
backbone clip: clip(size="ViT-B/16")
component a: bottleneck_adapter(dim=8, scale=1.0e-2) at clip.visual.blocks[1-3].mlp  # adapter

# the training block
train {  # opens
  lr = 3e-4  # peak
  # decay
  weight_decay = 0.050
}
set components.a.params.dim = 16  # wider
delete reported  # none
# trailing
"""


def test_text_to_yaml_to_text_is_exact():
    doc = read_text(TEXT, "s.comp")
    assert doc.comments[("train",)] == Comment(["# the training block"], "# opens")
    assert doc.comments[("train", "weight_decay")].before == ["# decay"]
    assert doc.spellings[("train", "weight_decay")] == "0.050"
    text = emit(doc, "text")
    for kept in ("lr = 3e-4  # peak", "weight_decay = 0.050", "scale=1.0e-2", "train {  # opens", "# trailing"):
        assert kept in text
    yaml_text = emit(doc, "yaml")
    assert "lr: 3e-4  # peak" in yaml_text and "weight_decay: 0.050" in yaml_text
    back = read_yaml(yaml_text, "s.yaml")
    assert back.data == doc.data and back.comments == doc.comments and back.trailing == doc.trailing
    assert emit(back, "text") == text


def test_a_spelling_that_no_longer_matches_the_value_is_not_used():
    doc = Document({"train": {"lr": 0.002, "epochs": 5}}, SourceMap(), "x.yaml",
                   spellings={("train", "lr"): "1e-3", ("train", "epochs"): "5.0"})
    for to in ("yaml", "text"):
        out = emit(doc, to)
        assert "1e-3" not in out and "5.0" not in out and "0.002" in out


def test_strings_that_look_like_numbers_or_comments_stay_strings():
    doc = read_yaml("a: '1e-3'\nb: 'x # y'\nc: \"two\\nlines\"\nd: 'no'\n", "s.yaml")
    for to, read in (("yaml", read_yaml), ("text", read_text)):
        again = read(emit(doc, to), "t")
        assert again.data == doc.data == {"a": "1e-3", "b": "x # y", "c": "two\nlines", "d": "no"}
        assert not again.comments


def test_cli_fmt_keeps_comments_both_ways(tmp_path):
    source = write(tmp_path, "s.yaml", YAML)
    text = CliRunner().invoke(main, ["fmt", str(source), "--to", "text"])
    assert text.exit_code == 0, text.output
    assert "# a header about the spec" in text.output and "lr = 1e-3  # peak" in text.output
    back = CliRunner().invoke(main, ["fmt", str(write(tmp_path, "t.comp", text.output)), "--to", "yaml"])
    assert back.exit_code == 0, back.output
    assert texts(read_yaml(back.output, "b.yaml")) == texts(read_yaml(YAML, "s.yaml"))


def test_comments_in_flow_collections_and_block_scalar_headers_are_kept():
    doc = read_yaml("a: |  # note\n  text\nv: {x: 1,  # on x\n   y: 2}\n", "s.yaml")
    assert doc.comments[("a",)].after == "# note" and doc.comments[("v",)].after == "# on x"
    again = read_yaml(emit(doc, "yaml"), "t.yaml")
    assert again.data == doc.data and again.comments == doc.comments
