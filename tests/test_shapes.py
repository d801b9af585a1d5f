"""The families' declared data against the libraries' real builds, so the two cannot drift: every tower's shape
at every size (tiny built for real on the CPU, full sizes on the meta device), the parameter names
(families/parameters.json) and CLIP's weight tags with their activations (open_clip's own table).
Budget: about 25 s on 2 cores (30 builds; full sizes on the meta device).

Run as a script, it rewrites families/parameters.json from the builds (after changing a family's modules)."""

import collections
import json
import re

import pytest

from composer.backbones.families import parameters
from composer.backbones.families.clip import SIZES as CLIP_SIZES
from composer.backbones.families.clip import TAGS
from composer.backbones.registry import Request, all_families
from composer.backbones.shape import shape_of
from composer.tensor_types import TType

OURS = ("chinese_clip", "clip", "dinov2", "videomae", "viclip")
CASES = [(f, size, tiny) for f in OURS for size in all_families()[f].sizes for tiny in (True, False)]
INPUTS = {"float": [TType(("B", 8, 3, 224, 224)), TType((2, 16, 3, 112, 112))],
          "str": [TType(("C",), "str"), TType(("C", 4), "str")]}


def _request(size: str, tiny: bool, frames: int = 8) -> Request:
    return Request(size=size, tiny=tiny, weights=None, load=False, image_size=224, frames=frames,
                   device="cpu" if tiny else "meta")


def _comparable(shape) -> dict:
    """A shape's data, with its functions (tokens, output types) evaluated on sample inputs."""
    data = {k: v for k, v in vars(shape).items() if k not in ("outputs", "tokens_of")}
    samples = INPUTS[shape.input_dtype] if shape.layout == "text" else [
        t for t in INPUTS["float"] if shape.fixed_frames in (None, t.shape[1])]
    data["outputs"] = {name: (o.summary, [o.type_of(t) for t in samples]) for name, o in shape.outputs.items()}
    data["tokens"] = [shape.tokens(t) for t in samples]
    return data


@pytest.mark.parametrize("family, size, tiny", CASES, ids=lambda v: str(v))
def test_declared_shapes_are_the_built_towers(family, size, tiny):
    f = all_families()[family]
    for frames in (8, 16) if family == "videomae" else (8,):  # VideoMAE's position table follows the frame count
        request = _request(size, tiny, frames)
        built = f.build(request, None, "bb")
        declared = f.shapes(request)
        assert set(declared) == set(built.towers) == set(f.towers)
        for name, tower in built.towers.items():
            assert _comparable(declared[name]) == _comparable(shape_of(tower)), (family, size, tiny, name)


def _parameter_data() -> dict:
    """families/parameters.json as the builds give it: each family's parameter names per size, block indices
    folded into {i} with the number of blocks, and the model's attributes only one tower uses."""
    out = {}
    for family in OURS:
        sizes = {}
        for size in all_families()[family].sizes:
            built = all_families()[family].build(_request(size, False), None, "bb")
            names = collections.Counter(re.sub(r"\.\d+\.", ".{i}.", n + ".")[:-1] for n, _ in built.named_parameters())
            sizes[size] = dict(names)
        out[family] = {"tower_modules": {t: list(m) for t, m in type(built).tower_modules.items()}, "sizes": sizes}
    return out


def test_declared_parameter_names_are_the_built_ones():
    assert json.loads(parameters.DATA.read_text()) == _parameter_data(), \
        "families/parameters.json is behind the builds: run `python tests/test_shapes.py`"
    for family in OURS:  # the same names at tiny size, towers dropped as the compiler drops them
        f = all_families()[family]
        built = f.build(_request(f.default_size, True), None, "bb")
        for tower in list(built.towers)[1:]:
            built.drop_tower(tower)
        kept = list(built.towers)
        assert sorted(parameters.parameter_names(family, f.default_size, kept)) == sorted(n for n, _ in built.named_parameters())


def test_clip_weight_tags_and_activations_are_open_clips():
    import open_clip

    for size, arch in CLIP_SIZES.items():
        assert list(TAGS[size]) == open_clip.list_pretrained_tags_by_model(arch)
        assert TAGS[size] == {t: bool(open_clip.get_pretrained_cfg(arch, t).get("quick_gelu")) for t in TAGS[size]}


if __name__ == "__main__":
    parameters.DATA.write_text(json.dumps(_parameter_data(), indent=1) + "\n")
