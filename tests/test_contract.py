"""The attachment contract over the whole registry, as timm tests every registered model: every attachable
kind x every family and tower x every point and use the kind declares (inside blocks and on the tower), at
tiny size on CPU. Each combination is either refused by the check with a located SpecError, or it builds,
runs forward and backward, its trainable parameters receive a gradient, and one step on them changes the
output. Never a traceback, never a dead part.

Checks run one spec per combination on the meta device; the accepted combinations of one tower share a few
real builds (components that could not share a point go to different builds)."""

import functools

import pytest
import torch
from conftest import tiny_batch, tiny_model, write

import composer.backbones  # noqa: F401  (registers the families)
import composer.components  # noqa: F401  (registers the kinds)
from composer.backbones.blocks import BLOCK_POINTS
from composer.backbones.registry import FAMILIES, TINY, Request
from composer.build.compile import BuildOptions, compile_spec
from composer.components.registry import KINDS
from composer.errors import SpecError
from composer.spec.load import load_spec
from composer.uses import USES

PARAMS = {"bottleneck_adapter": "dim=4", "lora": "r=2", "dora": "r=2", "visual_prompts": "tokens=2",
          "text_context": "tokens=2", "st_adapter": "dim=4", "msta": "dim=4",
          "temporal_prompts": "global_prompts=2, encoder_width=8"}  # tiny widths keep the builds fast
VIDEO = {"dinov2": 56}  # patch 14; the others take 64 px
PARTNER = "clip"  # a text-only family is scored against this family's (frozen) visual tower


@functools.cache
def _towers(family: str) -> dict:
    f = FAMILIES[family]
    request = Request(size=f.default_size, tiny=True, weights=None, load=False, image_size=64, frames=8,
                      device="meta")
    return f.build(request, None, "bb").towers


def _frames(family: str) -> int:
    visual = _towers(family).get("visual")
    return (visual.fixed_frames if visual is not None and visual.fixed_frames else 2)


def _flow(family: str, tower: str) -> tuple[str, str, int]:
    """Backbone lines, flow lines and frame count that take `tower`'s default output to a loss."""
    vis = "bb" if "visual" in _towers(family) else "vis"
    lines = [] if vis == "bb" else [f'backbone vis: {PARTNER}(size="{TINY}")']
    vis_family = family if vis == "bb" else PARTNER
    flow = [f"v = {vis}.visual(video)"]
    pooled = "v"
    if len(_towers(vis_family)["visual"].outputs[""].type_of(_video_type(vis_family)).shape) == 3:
        flow.append("vp = pool(v)")
        pooled = "vp"
    if tower == "visual":
        flow.append(f"logits = head({pooled})")
    else:
        flow += [f"t = bb.{tower}(class_names)", f"logits = cos({pooled}, t)"]
    return "\n".join(lines), "\n  ".join(flow), _frames(vis_family)


def _video_type(family: str):
    from composer.tensor_types import TType

    size = VIDEO.get(family, 64)
    return TType(("B", _frames(family), 3, size, size))


def _spec_text(family: str, tower: str, parts: list[tuple]) -> str:
    """A spec attaching every (name, kind, site, use) of `parts` to backbone bb."""
    extra, flow, frames = _flow(family, tower)
    size = VIDEO.get(family if tower == "visual" or "visual" in _towers(family) else PARTNER, 64)
    comps = "\n".join(f"component {n}: {k}({PARAMS.get(k, '')}) at {site} {use}" for n, k, site, use in parts)
    trains = any(KINDS[k].build is not None for _, k, _, _ in parts)  # taps alone: nothing to train
    if trains:
        flow += "\n  l = ce(logits, label)"
    used = {"pool": "mean(axis=1)", "head": "linear_head" + ("" if trains else " frozen"), "cos": "cosine_logits",
            "ce": "cross_entropy"}
    flow_parts = "\n".join(f"component {n}: {k}" for n, k in used.items() if f"{n}(" in flow)
    return f"""backbone bb: {family}(size="{TINY}")
{comps}
{extra}
{flow_parts}
flow {{
  {flow}
}}
{"losses { l = 1.0 }" if trains else "predict logits"}
set inputs.video = {{kind = "video", frames = {frames}, size = {size}}}
"""


def _combinations() -> list[tuple]:
    """(family, tower, kind, at_blocks, point, use) for everything the registry declares."""
    out = []
    for family in sorted(FAMILIES):
        for tower in sorted(_towers(family)):
            for kind in sorted((k for k in KINDS.values() if k.attaches), key=lambda k: k.name):
                for use in kind.uses:
                    for point in dict.fromkeys(kind.points):
                        for at_blocks in (True, False):
                            if at_blocks and point not in BLOCK_POINTS:
                                continue
                            if not at_blocks and point in BLOCK_POINTS and point != "input":
                                continue
                            out.append((family, tower, kind.name, at_blocks, point, use))
    return out


def _site(tower: str, at_blocks: bool, point: str) -> str:
    return f"bb.{tower}.blocks[1-2].{point}" if at_blocks else f"bb.{tower}.{point}"


def _check(tmp_path, combo) -> bool:
    """Whether the check (on the meta device) accepts one combination; a refusal must be located."""
    family, tower, kind, at_blocks, point, use = combo
    text = _spec_text(family, tower, [("part", kind, _site(tower, at_blocks, point), use)])
    spec = load_spec(write(tmp_path, "c.comp", text))
    try:
        compile_spec(spec, BuildOptions(device="meta", tiny=True))
    except SpecError as e:  # located at the part's own line (line 2), never elsewhere
        assert all(p.loc is not None and p.loc.line == 2 for p in e.problems), (combo, str(e))
        return False
    return True


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[tuple, bool]:
    """The check's verdict on every combination, shared by the tests of this file."""
    folder = tmp_path_factory.mktemp("contract")
    return {c: _check(folder, c) for c in _combinations()}


def _buckets(accepted: list[tuple]) -> list[list[tuple]]:
    """Spread one tower's accepted combinations over builds so that no two exclusive ones share a point."""
    buckets: list[list[tuple]] = []
    taken: list[set] = []
    for combo in accepted:
        _, _, kind, at_blocks, point, use = combo
        key = (at_blocks, point, use) if USES[use].exclusive or (not at_blocks and point == "embed") else None
        cross = KINDS[kind].build_shared is not None  # one spanning kind per build keeps its shared part alone
        for bucket, keys in zip(buckets, taken):
            if key not in keys and not (cross and ("shared", kind) in keys):
                break
        else:
            bucket, keys = [], set()
            buckets.append(bucket)
            taken.append(keys)
        bucket.append(combo)
        if key is not None:
            keys.add(key)
        keys.add(("shared", kind))
    return buckets


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


@pytest.mark.parametrize("family, tower", [(f, t) for f in sorted(FAMILIES) for t in sorted(_towers(f))])
def test_accepted_attachments_train_and_change_the_output(verdicts, tmp_path, family, tower):
    accepted = [c for c, ok in verdicts.items() if ok and c[:2] == (family, tower)]
    assert accepted
    for bucket in _buckets(accepted):
        parts = [(f"p{i}", c[2], _site(tower, c[3], c[4]), c[5]) for i, c in enumerate(bucket)]
        spec = load_spec(write(tmp_path, "b.comp", _spec_text(family, tower, parts)))
        model = tiny_model(spec).train(False)
        batch = tiny_batch(model, size=spec.inputs["video"].size)
        out = model(batch, outputs=["loss", "logits"] + [n for n, k, _, _ in parts if k == "tap"])
        out["loss"].backward()
        base = out["logits"].detach()
        named = dict(model.named_parameters())
        for (name, kind, site, use), combo in zip(parts, bucket):
            if kind == "tap":
                tapped = out[name]
                shape = model.graph.types[name].shape  # what the flow was promised (prompt tokens not counted)
                assert tapped.ndim == len(shape) and torch.isfinite(tapped).all(), combo
                assert all(d == n for d, n in zip(shape, tapped.shape) if isinstance(d, int)), (combo, shape)
                continue
            own = [p for n, p in named.items() if model.parameter_owner(n) == name and p.requires_grad]
            assert own, f"{combo}: no trainable parameters"
            grads = [p.grad for p in own]
            assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{combo}: no gradient (dead part)"
            saved = [p.detach().clone() for p in own]
            with torch.no_grad():
                for p, g in zip(own, grads):
                    if g is not None:
                        p.sub_(g / g.abs().max().clamp_min(1e-12))
                model.clear_cache()
                after = model(batch, outputs=["logits"])["logits"]
                for p, s in zip(own, saved):
                    p.copy_(s)
            assert not torch.equal(after, base), f"{combo}: a step on its parameters leaves the output unchanged"


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
    from composer.components.adapters.msta import MSTABranch, MSTAParams
    from composer.components.adapters.st_adapter import STAdapter, STAdapterParams

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
    from composer.components.adapters.msta import MSTABranch, MSTAParams

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
    text = _spec_text("clip", "visual", [("part", "visual_prompts", "bb.visual.input", "prompt")])
    gated = text.replace("visual_prompts(tokens=2)", "visual_prompts(tokens=2, gated=true)")
    assert gated != text
    with pytest.raises(SpecError, match="gated prompts attach at blocks") as e:
        compile_spec(load_spec(write(tmp_path, "g.comp", gated)), BuildOptions(device="meta", tiny=True))
    assert [p.loc.line for p in e.value.problems] == [2]
