"""Site paths: 1-based inclusive layer ranges, and errors that explain themselves."""

import pytest

from composer.errors import SpecError
from composer.spec.site import parse_site


@pytest.mark.parametrize("text, layers", [
    ("clip.visual.blocks[*].mlp", list(range(12))),
    ("clip.visual.blocks[8-12].mlp", [7, 8, 9, 10, 11]),
    ("clip.visual.blocks[1].attn.qkv", [0]),
    ("clip.visual.blocks[1,3,5-6].block", [0, 2, 4, 5]),
    ("clip.visual.blocks[10-last].block", [9, 10, 11]),
    ("clip.visual.blocks[last]", [11]),
])
def test_layers_are_one_based_and_inclusive(text, layers):
    assert parse_site(text).resolve(12) == layers


def test_points():
    assert parse_site("clip.visual.blocks[2].attn.qkv").point == "attn.qkv"
    assert parse_site("clip.visual.blocks[2]").point == "block"
    site = parse_site("clip.text.embed")
    assert (site.at_blocks, site.point) == (False, "embed")


def test_python_slices_are_refused_with_the_equivalent():
    with pytest.raises(SpecError) as e:
        parse_site("clip.visual.blocks[7:12].mlp")
    assert "blocks[8-12]" in e.value.problems[0].hint


@pytest.mark.parametrize("text, message", [
    ("clip.visual.blocks[13].mlp", "layer 13 does not exist"),
    ("clip.visual.blocks[0].mlp", "layer 0 does not exist"),
    ("clip.visual.blocks[9-3].mlp", "empty layer range"),
])
def test_bad_ranges(text, message):
    with pytest.raises(SpecError, match=message):
        parse_site(text).resolve(12)
