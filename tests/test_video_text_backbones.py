"""VideoMAE and Chinese-CLIP: the runner matches transformers, and released weight layouts load."""

import sys
import types

import pytest
import torch
from conftest import write
from safetensors.torch import save_file

from composer.backbones import chinese_clip, viclip
from composer.backbones.registry import Request, get_family
from composer.compiler.compile import BuildOptions, compile_spec
from composer.spec.load import load_spec


def _videomae(**kw):
    return get_family("videomae").build(Request(size="ViT-B/16", tiny=True, weights=None, load=False,
                                                image_size=64, frames=4, **kw))


def test_videomae_tower_matches_transformers():
    bb = _videomae()
    video = torch.rand(2, 4, 3, 64, 64)
    with torch.no_grad():
        ours = bb.towers["visual"].run(video, None)["tokens"]
        theirs = bb.model(pixel_values=bb.normalize(video.flatten(0, 1)).view(2, 4, 3, 64, 64)).last_hidden_state
        theirs = bb.model.layernorm(theirs)
    assert torch.allclose(ours, theirs, atol=1e-5)


def _to_original(state: dict) -> dict:
    """transformers' VideoMAE names back to the original code's (fused qkv, q_bias/v_bias)."""
    out = {}
    for i in range(12):
        a = f"encoder.layer.{i}.attention.attention."
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([state[a + "query.weight"], state[a + "key.weight"],
                                                        state[a + "value.weight"]])
        out[f"blocks.{i}.attn.q_bias"] = state[a + "query.bias"]
        out[f"blocks.{i}.attn.v_bias"] = state[a + "value.bias"]
        names = {"attention.output.dense": "attn.proj", "layernorm_before": "norm1", "layernorm_after": "norm2",
                 "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"}
        for theirs, ours in names.items():
            for p in ("weight", "bias"):
                out[f"blocks.{i}.{ours}.{p}"] = state[f"encoder.layer.{i}.{theirs}.{p}"]
    out["patch_embed.proj.weight"] = state["embeddings.patch_embeddings.projection.weight"]
    out["patch_embed.proj.bias"] = state["embeddings.patch_embeddings.projection.bias"]
    out["fc_norm.weight"], out["fc_norm.bias"] = torch.ones(64), torch.zeros(64)
    out["head.weight"], out["head.bias"] = torch.zeros(710, 64), torch.zeros(710)
    return out


def test_videomae_v2_checkpoints_load_from_the_original_layout(tmp_path):
    source = _videomae()
    with torch.no_grad():
        for p in source.model.parameters():
            p.normal_(0, 0.05)
    state = {k: v for k, v in source.model.state_dict().items() if not k.startswith("layernorm")}
    torch.save({"module": _to_original(state)}, tmp_path / "vit_b_k710_dl.pth")
    spec = load_spec(write(tmp_path, "s.comp", f"""
backbone mae: videomae(size="tiny", weights="{tmp_path / 'vit_b_k710_dl.pth'}")
component head: linear_head frozen
flow {{ e = mae.visual(video)
       logits = head(e) }}
set inputs.video = {{kind = "video", frames = 4, size = 64}}
"""))
    model = compile_spec(spec, BuildOptions(device="cpu", load_weights=True))
    loaded = model.backbones["mae"]
    video = torch.rand(1, 4, 3, 64, 64)
    with torch.no_grad():
        ours = loaded.towers["visual"].run(video, None)["tokens"]
        source.model.layernorm = None  # v2 pools by the mean: no final norm
        theirs = source.towers["visual"].run(video, None)["tokens"]
    assert torch.allclose(ours, theirs, atol=1e-4)  # eps 1e-6 (v2) against 1e-12 (the random source)


def test_videomae_takes_only_its_frame_count(tmp_path):
    from composer.errors import SpecError

    path = write(tmp_path, "s.yaml", "backbones:\n  mae: {family: videomae, size: tiny, frames: 16}\n"
                 "components:\n  head: {kind: linear_head, frozen: true}\n"
                 "flow:\n  e: {call: mae.visual, in: [video]}\n  logits: {call: head, in: [e]}\n")
    with pytest.raises(SpecError, match="takes clips of 16 frames, this one has 8"):
        compile_spec(load_spec(path))


def test_chinese_text_tower_matches_transformers_and_loads_a_released_layout(tmp_path):
    request = Request(size="RoBERTa-wwm-ext-base", tiny=True, weights=None, load=False, image_size=224, frames=8)
    bb = get_family("chinese_clip").build(request)
    texts = ["跳舞", "弹钢琴的人"]
    ids = chinese_clip._tokenize(bb.tokenizer, tuple(texts))
    with torch.no_grad():
        ours = bb.towers["text"].run(texts, None)[""]
        theirs = bb.projection(bb.model(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state[:, 0])
    assert torch.allclose(ours, theirs, atol=1e-5)
    state = {f"text_model.{k}": v for k, v in bb.model.state_dict().items()}
    state.update({f"text_projection.{k}": v for k, v in bb.projection.state_dict().items()})
    state["vision_model.embeddings.class_embedding"] = torch.zeros(4)  # the image tower is ignored
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "chinese.safetensors")
    loaded = chinese_clip.build(Request(size="RoBERTa-wwm-ext-base", tiny=True, load=True, image_size=224, frames=8,
                                        weights=str(tmp_path / "chinese.safetensors")))
    with torch.no_grad():
        assert torch.allclose(loaded.towers["text"].run(texts, None)[""], ours, atol=1e-6)


def test_official_viclip_pth_with_its_training_config_loads_without_unpickling_code(tmp_path, monkeypatch):
    module = types.ModuleType("easydict")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "easydict", "EasyDict"
    module.EasyDict = EasyDict
    monkeypatch.setitem(sys.modules, "easydict", module)
    model = viclip.ViCLIPModel(dict(width=64, layers=2, heads=2, patch=16, out=512, text_width=64, text_layers=2,
                                    text_heads=2, embed=512), 64)
    torch.save({"model": model.state_dict(), "config": EasyDict(lr=1e-3), "epoch": 9}, tmp_path / "viclip.pth")
    monkeypatch.delitem(sys.modules, "easydict")
    state = viclip.read_checkpoint(str(tmp_path / "viclip.pth"))
    assert set(state) == set(model.state_dict())
