"""LoRA/DoRA out to PEFT's adapter format and back: the library's own model (timm's DINOv2, open_clip's CLIP, transformers' VideoMAE)
with the folder loaded by PEFT gives composer's tower outputs, as loaded and merged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors import safe_open

from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.peft_format import CONFIG, WEIGHTS, base_state, largest_difference, layout_of, write_adapters
from composer.errors import DataError, SpecError
from composer.spec.load import load_spec

SPECS = Path(__file__).resolve().parents[1] / "specs/baselines"


VIDEOMAE_LORA = """
name: videomae-lora
inputs: {video: {kind: video, frames: 4, size: 32}}
backbones: {mae: {family: videomae, size: ViT-B/16}}
components:
  lora: {kind: lora, site: ["mae.visual.blocks[*].attn.q", "mae.visual.blocks[*].attn.v"], params: {r: 4, alpha: 8}}
  head: {kind: linear_head}
  ce: {kind: cross_entropy}
flow:
  clip_emb: {call: mae.visual, in: [video]}
  logits: {call: head, in: [clip_emb]}
  ce_loss: {call: ce, in: [logits, label]}
losses: {ce_loss: 1.0}
"""


def _trained(spec_file: str | Path, sets: list[str] = (), size: int = 28) -> torch.nn.Module:
    """The spec at tiny size with every trainable tensor moved off its start (B = 0 would hide a wrong layout)."""
    torch.manual_seed(0)
    model = compile_spec(load_spec(SPECS / spec_file, [f"inputs.video.size={size}", *sets]),
                         BuildOptions(device="cpu", tiny=True, num_classes=4, weights="random"))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _library(model, name: str, folder: Path | None, merge: bool = False):
    backbone = model.backbones[name]
    layout = layout_of(backbone.family)
    library = layout.model(backbone, "cpu")
    library.load_state_dict(layout.library_state(base_state(backbone)), strict=False)
    if folder is None:
        return layout, library
    loaded = PeftModel.from_pretrained(library, str(folder)).train(False)
    return layout, loaded.merge_and_unload() if merge else loaded


@pytest.mark.parametrize("spec_file, backbone, dora, size", [("dinov2-dora-linear.yaml", "dino", True, 28),
                                                             ("clip-lora.yaml", "clip", False, 28),
                                                             ("videomae", "mae", False, 32)])
def test_an_adapter_loaded_by_peft_gives_composers_outputs(tmp_path, spec_file, backbone, dora, size):
    if spec_file == "videomae":  # transformers' VideoMAE: LoRA on its separate query and value linears
        spec_file = tmp_path / "videomae-lora.yaml"
        spec_file.write_text(VIDEOMAE_LORA)
    model = _trained(spec_file, size=size)
    written = write_adapters(model, tmp_path / "out")
    folder = written.folders[backbone]
    config = json.loads((folder / CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["use_dora"] is dora
    assert config["base_model_name_or_path"].startswith("composer/random ")
    with safe_open(str(folder / WEIGHTS), "pt") as f:
        assert f.metadata()["spec"] == model.spec.name and f.metadata()["format"] == "pt"
    clips = torch.rand(1, model.backbones[backbone].request.frames, 3, size, size,
                       generator=torch.Generator().manual_seed(2))
    normalised = model.backbones[backbone].normalize(clips.flatten(0, 1)).view(clips.shape)
    with torch.no_grad():
        ours = model.backbones[backbone].towers["visual"].run_deltas_only(clips)[""]
        outputs = {}
        for state in ("base", "loaded", "merged"):
            layout, library = _library(model, backbone, None if state == "base" else folder, state == "merged")
            outputs[state] = layout.forward(library, "visual", normalised).reshape(ours.shape)
    assert (outputs["loaded"] - ours).abs().max() <= 1e-5
    assert (outputs["merged"] - ours).abs().max() <= 1e-5
    assert (outputs["base"] - ours).abs().max() > 1e-3  # the comparison can fail: without the adapter it does
    assert largest_difference(model, written) <= 1e-5  # the export's own check, every tower (CLIP's text too)
    assert written.left_out == ([] if backbone == "clip" else ["head (linear_head)"])


def test_what_peft_cannot_hold_is_refused_in_one_line(tmp_path):
    model = _trained("clip-lora.yaml", ["components.lora_visual.kind=dora", "components.lora_text.kind=dora"])
    with pytest.raises(DataError, match="DoRA on open_clip's nn.MultiheadAttention"):
        write_adapters(model, tmp_path)
    model = _trained("clip-lora.yaml", ["components.lora_visual.kind=dora"])
    with pytest.raises(DataError, match="carries both LoRA and DoRA"):
        write_adapters(model, tmp_path)
    model = _trained("clip-lora.yaml", ["components.lora_visual.site=clip.visual.blocks[*].attn.out",
                                        "components.lora_out.kind=lora",
                                        "components.lora_out.site=clip.visual.blocks[*].attn.qkv",
                                        "components.lora_out.params.r=4"])
    with pytest.raises(DataError, match="one rank and alpha"):
        write_adapters(model, tmp_path)


@pytest.mark.parametrize("spec_file, component", [("dinov2-dora-linear.yaml", "dora"), ("clip-lora.yaml", "lora_visual")])
def test_a_spec_starts_from_an_exported_adapter(tmp_path, spec_file, component):
    model = _trained(spec_file)
    write_adapters(model, tmp_path)
    backbone = model.graph.placements(component)[0].backbone
    start = [f"components.{c}.params.weights=peft:{tmp_path / backbone}" for c, d in model.spec.components.items()
             if model.graph.placements(c) and model.graph.placements(c)[0].backbone == backbone
             and model.graph.placements(c)[0].use == "weight_delta"]
    torch.manual_seed(5)
    again = compile_spec(load_spec(SPECS / spec_file, ["inputs.video.size=28", *start]),
                         BuildOptions(device="cpu", tiny=True, num_classes=4, weights="random"))
    before = {n: p for n, p in model.backbones[backbone].named_parameters() if ".lora_" in n}
    after = dict(again.backbones[backbone].named_parameters())
    assert before and all(torch.equal(p, after[n]) for n, p in before.items())
    assert any(".lora_B." in n and p.abs().sum() > 0 for n, p in after.items())  # B starts at 0 without the folder


def test_an_adapter_that_does_not_fit_is_refused_at_the_component(tmp_path):
    model = _trained("dinov2-dora-linear.yaml")
    write_adapters(model, tmp_path)
    start = f"components.dora.params.weights=peft:{tmp_path / 'dino'}"
    for sets, message in ((["components.dora.params.r=4"], "rank 8 and alpha 16, component 'dora' rank 4"),
                          (["components.dora.kind=lora"], "the PEFT adapter is DoRA, component 'dora' is LoRA"),
                          (["components.dora.site=dino.visual.blocks[1-6].attn.qkv"], "also changes 6 module(s) that no component starting from it covers: blocks.6.attn.qkv"),
                          (["components.dora.site=dino.visual.blocks[*].attn.out"], "does not change blocks.0.attn.proj")):
        with pytest.raises(SpecError, match=re.escape(message)) as error:
            compile_spec(load_spec(SPECS / "dinov2-dora-linear.yaml", ["inputs.video.size=28", start, *sets]),
                         BuildOptions(device="cpu", tiny=True, num_classes=4, weights="random"))
        assert "dinov2-dora-linear.yaml:9:3" in str(error.value)
    with pytest.raises(SpecError, match="the PEFT adapter is for 'composer/random"):
        compile_spec(load_spec(SPECS / "dinov2-dora-linear.yaml", ["inputs.video.size=28", start]),
                     BuildOptions(device="cpu", tiny=True, num_classes=4, weights="demo"))
    with pytest.raises(SpecError, match="is not a PEFT adapter folder"):
        compile_spec(load_spec(SPECS / "dinov2-dora-linear.yaml", ["inputs.video.size=28",
                                                                   f"components.dora.params.weights=peft:{tmp_path}"]),
                     BuildOptions(device="cpu", tiny=True, num_classes=4, weights="random"))


def test_clip_text_lora_alone_is_written_for_the_text_tower_only(tmp_path):
    """open_clip's text blocks (transformer.resblocks.N) are a suffix of its visual ones: the folder's targets
    must name whole modules, or PEFT would wrap the visual blocks too."""
    model = _trained("clip-lora.yaml", ["components.lora_text.params.r=4"])
    written = write_adapters(model, tmp_path)
    config = json.loads((written.folders["clip"] / CONFIG).read_text())
    assert config["r"] == 8 and set(config["rank_pattern"].values()) == {4}
    assert all(k.startswith("^transformer.") or k.startswith(r"^transformer\.") for k in config["rank_pattern"])
    assert largest_difference(model, written) <= 1e-5


def test_a_damaged_or_foreign_folder_is_refused_in_one_line(tmp_path):
    model = _trained("dinov2-dora-linear.yaml")
    folder = write_adapters(model, tmp_path).folders["dino"]
    start = [f"components.dora.params.weights=peft:{folder}"]
    config = json.loads((folder / CONFIG).read_text())
    weights = (folder / WEIGHTS).read_bytes()
    cases = (
        (lambda: (folder / CONFIG).write_text("{not json"), "is not a PEFT LoRA config"),
        (lambda: (folder / CONFIG).write_text(json.dumps({**config, "peft_type": "IA3"})), "not LoRA or DoRA"),
        (lambda: (folder / CONFIG).write_text(json.dumps({**config, "use_rslora": True})), "use_rslora=True"),
        (lambda: (folder / WEIGHTS).write_bytes(weights[: len(weights) // 2]), "PEFT cannot load"),
    )
    for damage, message in cases:
        (folder / CONFIG).write_text(json.dumps(config))
        (folder / WEIGHTS).write_bytes(weights)
        damage()
        with pytest.raises(SpecError, match=re.escape(message)):
            compile_spec(load_spec(SPECS / "dinov2-dora-linear.yaml", ["inputs.video.size=28", *start]),
                         BuildOptions(device="cpu", tiny=True, num_classes=4, weights="random"))
    (folder / CONFIG).write_text(json.dumps(config))
    (folder / WEIGHTS).write_bytes(weights)
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(folder / WEIGHTS))
    save_file({k: v for k, v in tensors.items() if "blocks.3." not in k}, str(folder / WEIGHTS))
    with pytest.raises(SpecError, match="lacks tensors PEFT needs"):
        compile_spec(load_spec(SPECS / "dinov2-dora-linear.yaml", ["inputs.video.size=28", *start]),
                     BuildOptions(device="cpu", tiny=True, num_classes=4, weights="random"))


def test_every_family_that_declares_a_peft_layout_has_one():
    from composer.backbones.peft_layout import PeftLayout
    from composer.backbones.registry import own_families

    declared = {name: family.peft for name, family in own_families().items() if family.peft is not None}
    assert set(declared) == {"clip", "dinov2", "videomae"}
    assert all(isinstance(lazy.resolve(), PeftLayout) for lazy in declared.values())
