"""Backbones: the generic block runner reproduces each library's own forward; weights come from local
files the tests write, and a missing hub file gives an error that says where it looked."""

import open_clip
import pytest
import torch
from conftest import write
from safetensors.torch import save_file

from composer.backbones import clip as clip_family
from composer.backbones.registry import Request, get_family
from composer.compiler.compile import BuildOptions, compile_spec
from composer.errors import SpecError
from composer.spec.load import load_spec


def _tiny(family: str, size: str):
    return get_family(family).build(Request(size=size, tiny=True, weights=None, load=False, image_size=64, frames=2))


def _open_clip_reference(backbone):
    """A plain open_clip model holding the same weights (nn.MultiheadAttention layout)."""
    reference = open_clip.CLIP(**clip_family._config(backbone.request)).eval()
    state = {k.replace("attn.qkv.weight", "attn.in_proj_weight").replace("attn.qkv.bias", "attn.in_proj_bias"): v
             for k, v in backbone.model.state_dict().items()}
    reference.load_state_dict(state)
    return reference


@pytest.mark.parametrize("size", ["ViT-B/16", "ViT-B/32"])
def test_clip_towers_match_open_clip(size):
    bb = _tiny("clip", size)
    ref = _open_clip_reference(bb)
    video = torch.rand(2, 2, 3, 64, 64)
    texts = ["a video of a cat.", "a dog playing the piano."]
    with torch.no_grad():
        ours = bb.towers["visual"].run(video, grad_from=None)[""]
        theirs = ref.encode_image(bb.normalize(video.flatten(0, 1)))
        assert torch.allclose(ours.flatten(0, 1), theirs, atol=1e-5)
        ours_text = bb.towers["text"].run(texts, grad_from=None)[""]
        assert torch.allclose(ours_text, ref.encode_text(open_clip.tokenize(texts)), atol=1e-5)


def test_dinov2_tower_matches_timm():
    video = torch.rand(2, 2, 3, 56, 56)
    bb = get_family("dinov2").build(Request(size="ViT-S/14", tiny=True, weights=None, load=False, image_size=56,
                                            frames=2))
    with torch.no_grad():
        ours = bb.towers["visual"].run(video, grad_from=None)
        theirs = bb.model.forward_features(bb.normalize(video.flatten(0, 1)))
    assert torch.allclose(ours[""].flatten(0, 1), theirs[:, 0], atol=1e-5)
    assert torch.allclose(ours["tokens"].flatten(0, 1), theirs[:, 1:], atol=1e-5)


def test_tiny_keeps_the_depth_and_patch_of_the_size_it_replaces():
    large = _tiny("clip", "ViT-L/14")
    assert large.towers["visual"].depth == 24 and large.towers["visual"].patch == 14
    assert large.towers["visual"].width == 64


def test_full_sizes_on_the_meta_device_have_the_published_parameter_counts():
    def count(family, size):
        bb = get_family(family).build(Request(size=size, tiny=False, weights=None, load=False, image_size=224,
                                              frames=8, device="meta"))
        return sum(p.numel() for p in bb.parameters())

    assert count("clip", "ViT-B/16") == 149_620_737
    assert count("clip", "ViT-L/14") == 427_616_513
    assert count("dinov2", "ViT-B/14") == 85_724_928  # 86.58M at 518 px, less the position embeddings' 1113 rows


SPEC = """
backbone clip: clip(size="tiny", weights="{weights}"{more})
component pool: temporal_mean
component head: linear_head frozen
flow {{ frames = clip.visual(video)
       clip_emb = pool(frames)
       logits = head(clip_emb) }}
"""


def test_local_clip_weights_load_into_the_same_code_path(tmp_path):
    request = Request(size="ViT-B/16", tiny=True, weights=None, load=False, image_size=224, frames=8)
    source = open_clip.CLIP(**clip_family._config(request))
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "clip.safetensors")
    spec = load_spec(write(tmp_path, "s.comp", SPEC.format(weights=tmp_path / "clip.safetensors",
                                                            more=', activation="gelu"')))
    model = compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
    loaded = model.backbones["clip"].model.visual.conv1.weight
    assert torch.equal(loaded, source.visual.conv1.weight)


def _mlp_activation(model) -> type:
    return type(model.backbones["clip"].model.visual.transformer.resblocks[0].mlp.gelu)


def _openai_release(state: dict, path) -> None:
    """Write `state` as OpenAI ships CLIP: a TorchScript archive whose module also keeps the input
    resolution, context length and vocabulary size as tensors."""
    root = torch.nn.Module()
    extra = {"input_resolution": torch.tensor(224), "context_length": torch.tensor(77), "vocab_size": torch.tensor(49408)}
    for key, tensor in {**state, **extra}.items():
        *parents, leaf = key.split(".")
        module = root
        for part in parents:
            if not hasattr(module, part):
                module.add_module(part, torch.nn.Module())
            module = getattr(module, part)
        module.register_buffer(leaf, tensor.clone())
    torch.jit.script(root).save(str(path))


def test_openai_release_under_a_plain_file_name_builds_quick_gelu(tmp_path):
    request = Request(size="ViT-B/16", tiny=True, weights=None, load=False, image_size=224, frames=8)
    source = open_clip.CLIP(**clip_family._config(request), quick_gelu=True)
    _openai_release(source.state_dict(), tmp_path / "ViT-B-16.pt")  # the name says nothing about OpenAI
    spec = load_spec(write(tmp_path, "s.comp", SPEC.format(weights=tmp_path / "ViT-B-16.pt", more="")))
    model = compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
    assert _mlp_activation(model) is open_clip.transformer.QuickGELU
    assert torch.equal(model.backbones["clip"].model.visual.conv1.weight, source.visual.conv1.weight)
    assert _mlp_activation(compile_spec(spec)) is open_clip.transformer.QuickGELU  # `composer build` (meta) too


def test_a_state_dict_that_cannot_tell_its_activation_is_refused(tmp_path):
    request = Request(size="ViT-B/16", tiny=True, weights=None, load=False, image_size=224, frames=8)
    weights = tmp_path / "ViT-B-16-openai.pt"  # a file name is no evidence, even one that says openai
    torch.save(open_clip.CLIP(**clip_family._config(request), quick_gelu=True).state_dict(), weights)
    spec = load_spec(write(tmp_path, "s.comp", SPEC.format(weights=weights, more="")))
    with pytest.raises(SpecError) as e:
        compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
    problem = e.value.problems[0]
    assert "cannot tell which activation the CLIP weights" in problem.message
    assert "activation: quick_gelu" in problem.expected and "weights: openai" in problem.hint
    stated = load_spec(write(tmp_path, "t.comp", SPEC.format(weights=weights, more=', activation="quick_gelu"')))
    assert _mlp_activation(compile_spec(stated, BuildOptions(device="cpu", load_weights=True))) \
        is open_clip.transformer.QuickGELU


@pytest.mark.parametrize("weights, expected", [("openai", open_clip.transformer.QuickGELU),
                                               ("laion2b_s34b_b88k", torch.nn.GELU)])
def test_hub_tags_decide_the_activation_and_a_contradiction_stops(tmp_path, weights, expected):
    path = write(tmp_path, "s.comp", SPEC.format(weights=weights, more="").replace('"tiny"', '"ViT-B/16"'))
    assert _mlp_activation(compile_spec(load_spec(path))) is expected  # on the meta device: nothing downloaded
    other = "gelu" if expected is open_clip.transformer.QuickGELU else "quick_gelu"
    wrong = load_spec(path, [f"backbones.clip.activation={other}"])
    with pytest.raises(SpecError, match=f"activation: {other} contradicts the weights"):
        compile_spec(wrong)


def test_activation_is_refused_where_a_family_has_a_fixed_one(tmp_path):
    spec = load_spec(write(tmp_path, "s.yaml", "backbones:\n  dino: {family: dinov2, size: ViT-S/14, activation: gelu}\n"))
    with pytest.raises(SpecError, match="dinov2 backbones have a fixed activation"):
        compile_spec(spec)


def test_missing_hub_weights_explain_where_they_were_looked_for(tmp_path):
    spec = load_spec(write(tmp_path, "s.yaml", "backbones:\n  clip: {family: clip, size: ViT-B/32, weights: openai}\n"))
    with pytest.raises(SpecError) as e:
        compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
    problem = e.value.problems[0]
    assert "looked for 'timm/vit_base_patch32_clip_224.openai/'" in problem.message
    assert "HF_HUB_OFFLINE=1" in problem.message
    assert "--set backbones.clip.weights=/path/to/file" in problem.hint
    assert problem.loc.line == 2


def test_missing_local_weights_file(tmp_path):
    spec = load_spec(write(tmp_path, "s.yaml",
                           "backbones:\n  dino: {family: dinov2, size: ViT-S/14, weights: /nowhere/x.safetensors}\n"))
    with pytest.raises(SpecError, match="weights file for DINOv2 ViT-S/14 not found"):
        compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
