"""ViCLIP: strict loading of the official layouts, outputs equal to the official architecture's, frame counts."""

import pytest
import torch
from conftest import write
from reference.viclip_official import ViCLIPOfficial
from safetensors.torch import save_file

from composer.backbones import viclip
from composer.backbones.registry import Request
from composer.backbones.stats import IMAGENET_MEAN, IMAGENET_STD
from composer.compiler.compile import BuildOptions, compile_spec
from composer.errors import SpecError
from composer.spec.load import load_spec

TINY = dict(width=64, layers=12, heads=2, patch=16, out=512, text_width=64, text_layers=12, text_heads=2, embed=512)


def _official(image_size=64):
    torch.manual_seed(3)
    return ViCLIPOfficial(image_size=image_size, **TINY).eval()


def _ours(state, image_size=64):
    model = viclip.ViCLIPModel(TINY, image_size)
    viclip.load_strict(model, state, "test")
    request = Request(size="ViT-B/16", tiny=True, weights=None, load=False, image_size=image_size, frames=8)
    return viclip.ViCLIPBackbone(request, model.eval())


def test_official_key_names_and_counts_at_full_size():
    with torch.device("meta"):
        b16 = viclip.ViCLIPModel(viclip.SIZES["ViT-B/16"], 224).state_dict()
        l14 = viclip.ViCLIPModel(viclip.SIZES["ViT-L/14"], 224).state_dict()
    assert (len(b16), sum(v.numel() for v in b16.values())) == (303, 149_603_841)
    assert (len(l14), sum(v.numel() for v in l14.values())) == (447, 427_590_145)
    assert b16["vision_encoder.conv1.weight"].shape == (768, 3, 1, 16, 16)
    assert b16["vision_encoder.temporal_positional_embedding"].shape == (1, 8, 768)
    assert b16["text_encoder.positional_embedding"].shape == (32, 512)
    assert b16["temp"].shape == ()


def test_our_keys_are_exactly_the_official_ones():
    assert set(_official().state_dict()) == set(viclip.ViCLIPModel(TINY, 64).state_dict())


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_official_checkpoints_load_strictly_and_give_the_official_outputs(tmp_path, fmt):
    official = _official()
    state = official.state_dict()
    path = tmp_path / f"viclip.{fmt}"
    if fmt == "pth":
        torch.save({"model": state, "epoch": 3}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    spec = load_spec(write(tmp_path, "s.comp", f"""
backbone v: viclip(size="tiny", weights="{path}")
component head: cosine_logits frozen
component prompt: text_template
flow {{ e = v.visual(video)
       texts = prompt(class_names)
       t = v.text(texts)
       logits = head(e, t) }}
set inputs.video.size = 64
"""))
    model = compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
    video = torch.rand(2, 8, 3, 64, 64)
    tower = model.backbones["v"].towers["visual"]
    with torch.no_grad():
        ours = tower.run(video, None)[""]
        mean = torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
        theirs = official.vision_encoder(((video - mean) / std).permute(0, 2, 1, 3, 4))
        assert torch.allclose(ours, theirs, atol=1e-5)
        from composer.backbones.clip import tokenize

        texts = ["a video of a dog.", "someone is playing the violin in the rain."]
        ours_t = model.backbones["v"].towers["text"].run(texts, None)[""]
        theirs_t = official.text_encoder(tokenize(tuple(texts), 32))
        assert torch.allclose(ours_t, theirs_t, atol=1e-5)


def test_a_checkpoint_that_does_not_fit_lists_every_difference():
    state = _official().state_dict()
    state.pop("vision_encoder.proj")
    state["vision_encoder.extra"] = torch.zeros(1)
    state["text_encoder.positional_embedding"] = torch.zeros(77, 64)
    with pytest.raises(SpecError) as e:
        _ours(state)
    hint = e.value.problems[0].hint
    assert "1 missing: vision_encoder.proj" in hint
    assert "1 unexpected: vision_encoder.extra" in hint
    assert "text_encoder.positional_embedding: checkpoint (77, 64), model (32, 64)" in hint


@pytest.mark.parametrize("frames", [1, 4, 16])
def test_other_frame_counts_interpolate_or_truncate_the_temporal_embedding(frames):
    official = _official()
    bb = _ours(official.state_dict())
    table = official.vision_encoder.temporal_positional_embedding
    if frames > 8:  # the official loader resizes the table linearly before building a 16-frame model
        resized = torch.nn.functional.interpolate(table.transpose(1, 2), size=frames, mode="linear")
        official.vision_encoder.temporal_positional_embedding = torch.nn.Parameter(resized.transpose(1, 2))
    elif 1 < frames < 8:
        official.vision_encoder.temporal_positional_embedding = torch.nn.Parameter(table[:, :frames])
    video = torch.rand(1, frames, 3, 64, 64)
    with torch.no_grad():
        ours = bb.towers["visual"].run(video, None)[""]
        theirs = official.vision_encoder(bb.normalize(video.flatten(0, 1)).view(1, frames, 3, 64, 64)
                                         .permute(0, 2, 1, 3, 4))
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_tokens_are_patch_major():
    official = _official()
    bb = _ours(official.state_dict())
    video = torch.rand(1, 8, 3, 64, 64)
    with torch.no_grad():
        x = bb.model.vision_encoder.embed(bb.normalize(video.flatten(0, 1)).view(1, 8, 3, 64, 64))
        patch = bb.model.vision_encoder.conv1(bb.normalize(video.flatten(0, 1)).view(1, 8, 3, 64, 64)
                                              .permute(0, 2, 1, 3, 4))
    # token 1 + n*T + t is patch n of frame t: the second token is patch 0 of frame 1
    first = patch[0, :, 1, 0, 0] + bb.model.vision_encoder.positional_embedding[1] \
        + bb.model.vision_encoder.temporal_positional_embedding[0, 1]
    ln = torch.nn.functional.layer_norm(first, (64,), bb.model.vision_encoder.ln_pre.weight,
                                        bb.model.vision_encoder.ln_pre.bias)
    assert torch.allclose(x[0, 2], ln, atol=1e-5)
