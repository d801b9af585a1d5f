"""The attachment contract over the whole registry (composer/testing.py, which plugin authors run too): every
attachable kind x every family and tower x every point and use the kind declares, at tiny size on CPU. Each
combination is either refused by the check at the part's own line, or it builds, runs forward and backward,
its trainable parameters receive a gradient, and one step on them changes the output."""

import pytest
import torch
from conftest import write

from composer import testing
from composer.backbones.registry import own_families
from composer.compiler.compile import BuildOptions, compile_spec
from composer.components.registry import own_kinds
from composer.errors import SpecError
from composer.spec.load import load_spec

KINDS = own_kinds()  # every kind composer declares
PARAMS = {"bottleneck_adapter": "dim=4", "lora": "r=2", "dora": "r=2", "visual_prompts": "tokens=2",
          "text_context": "tokens=2", "st_adapter": "dim=4", "msta": "dim=4",
          "temporal_prompts": "global_prompts=2, encoder_width=8"}  # tiny widths keep the builds fast


@pytest.fixture(scope="module")
def verdicts() -> dict[tuple, bool]:
    """The check's verdict on every combination, shared by the tests of this file."""
    return {c: testing.verdict(c, PARAMS) for c in testing.combinations([k for k in KINDS if KINDS[k].attaches])}


def test_every_kind_attaches_somewhere_and_the_known_dead_sites_are_refused(verdicts):
    accepted = {c for c, ok in verdicts.items() if ok}
    for kind in (k for k in KINDS.values() if k.attaches):
        assert any(c[2] == kind.name for c in accepted), f"{kind.name} attaches nowhere"
    # only CLIP's text tower (and ViCLIP's, the same code) applies the tower-level `embed` point
    assert ("clip", "text", "text_context", False, "embed", "sequential") in accepted
    assert not verdicts[("chinese_clip", "text", "text_context", False, "embed", "sequential")]
    assert not verdicts[("dinov2", "visual", "tap", False, "embed", "tap")]
    assert not verdicts[("clip", "visual", "tap", True, "tokens", "tap")]  # nothing flows through `tokens`
    assert not verdicts[("clip", "visual", "lora", True, "attn.q", "weight_delta")]


@pytest.mark.parametrize("family, tower", [(f, t) for f in sorted(own_families()) for t in sorted(testing.towers(f))])
def test_accepted_attachments_train_and_change_the_output(verdicts, family, tower):
    accepted = [c for c, ok in verdicts.items() if ok and c[:2] == (family, tower)]
    assert accepted
    for bucket in testing.buckets(accepted):
        testing.train(bucket, PARAMS)


def _grid_context(layout: str, order: str = "thw", prefix: int = 1, extra: int = 0):
    from types import SimpleNamespace

    from composer.backbones.blocks import RunContext

    return RunContext(batch=2, frames=3, layout=layout, prefix=prefix, grid=(2, 2), extra=extra, order=order,
                      parts=SimpleNamespace(norm1=lambda x: x))


def _site_info(layout: str, prefix: int = 1):
    from composer.components.registry import SiteInfo

    return SiteInfo(backbone="bb", tower="visual", point="block", use="parallel", layer=0, in_dim=8, out_dim=8,
                    width=8, heads=2, layout=layout, frames=3, grid=(2, 2), prefix=prefix, shared=torch.nn.ModuleDict())


@pytest.mark.parametrize("kind", ["st_adapter", "msta"])
def test_grid_kinds_see_only_the_patch_grid(kind):
    """Kinds that reshape tokens into the patch grid update the patch tokens alone, the same with or without
    prefix (class, register) and shallow prompt tokens around them, which pass through."""
    from composer.components.adapters.msta import MSTAParams
    from composer.components.adapters.msta_module import MSTABranch
    from composer.components.adapters.st_adapter import STAdapterParams
    from composer.components.adapters.st_adapter_module import STAdapter

    torch.manual_seed(0)
    if kind == "st_adapter":
        module = STAdapter(8, STAdapterParams(dim=4))
        torch.nn.init.normal_(module.up.weight)
    else:
        module = MSTABranch(_site_info("frames"), MSTAParams(dim=4), torch.nn.ModuleDict())
    patches, head, tail = torch.randn(6, 4, 8), torch.randn(6, 2, 8), torch.randn(6, 3, 8)
    alone = module(torch.cat([head[:, :1], patches], 1), _grid_context("frames"))
    around = module(torch.cat([head, patches, tail], 1), _grid_context("frames", prefix=2, extra=3))
    if kind == "st_adapter":  # sequential: prefix and prompts come back as they were
        assert torch.equal(around[:, :2], head) and torch.equal(around[:, -3:], tail)
    assert torch.allclose(alone[:, 1:], around[:, 2:6], atol=1e-6)


@pytest.mark.parametrize("order", ["thw", "hwt"])
def test_msta_temporal_conv_follows_the_towers_token_order(order):
    """MSTA's temporal up mixes one patch position over neighbouring frames, whichever order a video tower
    lays its tokens in (VideoMAE time-major, ViCLIP patch-major)."""
    from composer.components.adapters.msta import MSTAParams
    from composer.components.adapters.msta_module import MSTABranch

    torch.manual_seed(0)
    module = MSTABranch(_site_info("video", prefix=0), MSTAParams(dim=4, shared=False), torch.nn.ModuleDict())
    ctx = _grid_context("video", order=order, prefix=0)
    x = torch.randn(1, 12, 8)
    index = (lambda t, n: t * 4 + n) if order == "thw" else (lambda t, n: n * 3 + t)
    y = x.clone()
    y[0, index(0, 1)] += 1.0  # frame 0, patch 1
    changed = (module(y, ctx) - module(x, ctx)).abs().sum(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == sorted([index(0, 1), index(1, 1)])


def test_a_gated_prompt_at_the_tower_input_is_refused_at_its_line(tmp_path):
    """Only a block applies a prompt gate: at the tower's input the gate would be a parameter that never trains."""
    text = testing.spec_text("clip", "visual", [("part", "visual_prompts", "bb.visual.input", "prompt")], PARAMS)
    gated = text.replace("visual_prompts(tokens=2)", "visual_prompts(tokens=2, gated=true)")
    assert gated != text
    with pytest.raises(SpecError, match="gated prompts attach at blocks") as e:
        compile_spec(load_spec(write(tmp_path, "g.comp", gated)), BuildOptions(device="meta", tiny=True))
    assert [p.loc.line for p in e.value.problems] == [2]
