"""Components: zero-initialised parts reproduce the frozen backbone exactly; parameter counts match
the analytic formulas; the losses and pooling behave as their papers say."""

import pytest
import torch
from conftest import tiny_batch, tiny_model, write

from composer.compiler.compile import compile_spec
from composer.spec.load import load_spec

HEAD = """
backbone bb: {family}(size="{size}")
component {name}: {kind}({params}) at {site} {use}
component pool: temporal_mean
component head: linear_head
component ce: cross_entropy
flow {{
  frames = bb.visual(video)
  clip_emb = pool(frames)
  logits = head(clip_emb)
  ce_loss = ce(logits, label)
}}
losses {{ ce_loss = 1.0 }}
set inputs.video = {{kind = "video", frames = 2, size = {px}}}
"""

ZERO_INIT = [
    ("bottleneck_adapter", "dim=8", "bb.visual.blocks[*].mlp", "parallel"),
    ("bottleneck_adapter", "dim=8", "bb.visual.blocks[2-5].attn", "sequential"),
    ("bottleneck_adapter", "dim=8", "bb.visual.blocks[1,12].block", "sequential"),
    ("bottleneck_adapter", "dim=8", "bb.visual.blocks[*].mlp.fc1", "parallel"),
    ("bottleneck_adapter", "dim=8", "bb.visual.blocks[*].attn.v", "parallel"),
    ("lora", "r=4", "bb.visual.blocks[*].attn.qkv", "weight_delta"),
    ("lora", "r=4", "bb.visual.blocks[8-12].mlp.fc2", "weight_delta"),
    ("dora", "r=4", "bb.visual.blocks[*].attn.qkv", "weight_delta"),
    ("dora", "r=4", "bb.visual.blocks[*].attn.out", "weight_delta"),
    ("visual_prompts", "tokens=4, gated=true", "bb.visual.blocks[*].tokens", "prompt"),
]


def _model(tmp_path, family, size, kind, params, site, use, px):
    text = HEAD.format(family=family, size=size, name="part", kind=kind, params=params, site=site, use=use, px=px)
    return tiny_model(load_spec(write(tmp_path, "s.comp", text)))


@pytest.mark.parametrize("family, size, px", [("clip", "ViT-B/16", 64), ("dinov2", "ViT-S/14", 56)])
@pytest.mark.parametrize("kind, params, site, use", ZERO_INIT, ids=lambda x: str(x))
def test_zero_initialised_parts_reproduce_the_frozen_backbone_exactly(tmp_path, family, size, px, kind, params,
                                                                      site, use):
    model = _model(tmp_path, family, size, kind, params, site, use, px)
    tower = model.backbones["bb"].towers["visual"]
    video = torch.rand(2, 2, 3, px, px)
    with torch.no_grad():
        adapted = tower.run(video, grad_from=0, active=True)[""]
        frozen = tower.run(video, grad_from=None, active=False)[""]
    assert torch.equal(adapted, frozen)
    assert model.trainable_state(), "the part has trainable parameters"


def test_ungated_prompts_do_change_the_output(tmp_path):
    model = _model(tmp_path, "clip", "ViT-B/16", "visual_prompts", "tokens=4", "bb.visual.blocks[*].tokens",
                   "prompt", 64)
    tower = model.backbones["bb"].towers["visual"]
    video = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(tower.run(video, None, True)[""], tower.run(video, None, False)[""])


def test_zero_initialised_text_adapters_reproduce_the_text_tower(tmp_path):
    spec = load_spec("specs/baselines/clip-lora.yaml", sets=["inputs.video.size=64", "inputs.video.frames=2"])
    model = tiny_model(spec)
    tower = model.backbones["clip"].towers["text"]
    texts = ["a video of a cat.", "a video of a person juggling."]
    with torch.no_grad():
        assert torch.equal(tower.run(texts, 0, True)[""], tower.run(texts, None, False)[""])


def _trainable(spec_path, sets=()):
    return compile_spec(load_spec(spec_path, sets=sets)).graph, compile_spec(load_spec(spec_path, sets=sets))


@pytest.mark.parametrize("spec, part, count", [
    # DoRA r=8 on the 12 fused qkv of DINOv2-B/14: 12 x (8*768 + 2304*8 + 2304)
    ("specs/baselines/dinov2-dora-linear.yaml", "dora", 322_560),
    # LoRA r=8 on qkv: 12 x (8*768 + 2304*8) visual, 12 x (8*512 + 1536*8) text
    ("specs/baselines/clip-lora.yaml", "lora_visual", 294_912),
    ("specs/baselines/clip-lora.yaml", "lora_text", 196_608),
    # bottleneck 64 parallel to 12 MLPs of width 768: 12 x (768*64 + 64 + 64*768 + 768)
    ("specs/baselines/clip-adapter.yaml", "adapter", 1_189_632),
    # linear head 768 -> 400 classes
    ("specs/baselines/dinov2-dora-linear.yaml", "head", 768 * 400 + 400),
])
def test_trainable_counts_equal_the_analytic_count(spec, part, count):
    from composer.compiler.summary import parameter_counts

    model = compile_spec(load_spec(spec))
    assert parameter_counts(model)[part]["trainable"] == count


def test_visual_prompt_and_text_context_counts(tmp_path):
    from composer.compiler.summary import parameter_counts

    model = _model(tmp_path, "clip", "ViT-B/16", "visual_prompts", "tokens=8", "bb.visual.blocks[*].tokens",
                   "prompt", 64)
    assert parameter_counts(model)["part"]["trainable"] == 12 * 8 * 64  # tiny width 64


def test_infonce_treats_every_same_label_pair_as_positive():
    from composer.components.losses.infonce import InfoNCEParams
    from composer.components.losses.infonce_module import LabelAwareInfoNCE

    loss = LabelAwareInfoNCE(InfoNCEParams(temperature=0.1))
    text = torch.eye(3)
    label = torch.tensor([0, 0, 1])
    perfect = loss(text[label], text, label)
    wrong = loss(text[torch.tensor([1, 2, 0])], text, label)
    assert perfect < wrong
    # two clips of class 0 share one positive text: the best achievable loss is log 2 per such row, not 0
    assert perfect > 0.1


def test_text_context_inserts_vectors_after_the_start_token(tmp_path):
    spec = load_spec(write(tmp_path, "s.comp", """
backbone clip: clip(size="tiny")
component coop: text_context(tokens=4) at clip.text.embed
component prompt: text_template(template="{}.")
component pool: temporal_mean
component head: cosine_logits
component ce: cross_entropy
flow { frames = clip.visual(video)
       v = pool(frames)
       texts = prompt(class_names)
       t = clip.text(texts)
       logits = head(v, t)
       l = ce(logits, label) }
losses { l = 1.0 }
set inputs.video = {kind = "video", frames = 2, size = 64}
"""))
    model = tiny_model(spec)
    assert sum(p.numel() for p in model.trainable_state().values()) == 4 * 64
    batch = tiny_batch(model)
    out = model(batch)
    out["loss"].backward()
    assert model.components["coop"]["embed"].context.grad.abs().sum() > 0


def test_temporal_transformer_starts_as_the_temporal_mean():
    from composer.components.fusion.temporal_transformer import TemporalTransformerParams
    from composer.components.fusion.temporal_transformer_module import TemporalTransformer

    module = TemporalTransformer(8, 32, TemporalTransformerParams(layers=2, heads=4)).eval()
    frames = torch.randn(3, 8, 32)
    assert torch.allclose(module(frames), frames.mean(1), atol=1e-6)


def test_tds_side_network_reads_the_tapped_towers_declared_prefix(monkeypatch):
    """A DINOv2 with 4 registers has 5 prefix tokens before its patch grid: the side network takes the class
    token and the patches by the tower's declaration instead of refusing the taps (it assumed 1 + grid)."""
    from dataclasses import replace

    import timm

    import composer.backbones.dinov2 as dinov2
    from composer.backbones.registry import FAMILIES

    create = timm.create_model
    monkeypatch.setattr(dinov2.timm, "create_model", lambda *a, **k: create(*a, reg_tokens=4, **k))
    family = FAMILIES["dinov2"]  # declared as a family with registers would declare its towers

    def with_registers(request):
        visual = family.shapes(request)["visual"]
        return {"visual": replace(visual, prefix=5, tokens_of=lambda t: visual.tokens(t) + 4)}

    monkeypatch.setitem(FAMILIES, "dinov2", replace(family, shapes=with_registers))
    spec = load_spec("tds-clip", ["backbones.clip={family: dinov2, size: ViT-S/14}", "components.side.params.patch=14",
                                  "components.side.params.dim=64", "inputs.video.size=56", "inputs.video.frames=2"])
    model = tiny_model(spec, classes=3)
    taps = model.graph.types["layers"]
    assert taps.prefix == 5 and taps.shape[3] == 5 + 4 * 4
    out = model(tiny_batch(model, clips=2, classes=3))
    out["loss"].backward()
    assert out["logits"].shape == (2, 3) and model.components["side"].position.grad is not None


def test_a_pretrained_tower_run_switches_off_weight_deltas_too(tmp_path):
    """MSTA's consistency loss compares against `viclip.text.pretrained`: with a LoRA on the same text tower, the
    pretrained run must be the frozen model, not the LoRA-adapted one (before, only hooks were switched off)."""
    import json

    from composer.spec.shipped import shipped

    names = [f"class {i}" for i in range(3)]
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps({n: {"spatial": [f"{n} a", f"{n} b"], "temporal": [f"{n} c", f"{n} d"]} for n in names}))
    spec = load_spec(shipped()["msta"], ["inputs.video.size=64", "inputs.video.frames=2",
                                         "components.lora={kind: lora, site: 'viclip.text.blocks[*].attn.qkv', "
                                         "use: weight_delta, params: {r: 4}}"])
    model = tiny_model(spec, classes=3)
    model.use_dataset_files({"descriptions": path})
    batch = tiny_batch(model, clips=2, classes=3)
    batch["class_names"] = names
    model.train(False)
    with torch.no_grad():
        before = model(batch, outputs=["spatial_each", "class_emb"])
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()  # LoRA starts as no change: make it one
        model.clear_cache()
        after = model(batch, outputs=["spatial_each", "class_emb"])
    assert not torch.allclose(before["class_emb"], after["class_emb"])  # the adapted tower changed
    assert torch.equal(before["spatial_each"], after["spatial_each"])  # the pretrained one did not
    lora = [m for m in model.modules() if hasattr(m, "disable_adapters") and hasattr(m, "lora_A")]
    assert lora and not any(m.disable_adapters for m in lora)  # switched back on after the pretrained run
