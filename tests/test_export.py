"""`composer export`: tiny specs with checkpoints written as `composer run` writes them, exported to ONNX (run in
onnxruntime), TorchScript and torch.export programs, each loaded back and compared with the composed model on
clips it was not traced on; LoRA and DoRA merged away; the refusals."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from composer.cli import main
from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.inference import check_constants, split
from composer.compiler.serialize import FORMATS, require
from composer.errors import DataError, SpecError
from composer.rundir.checkpoint import load_trainable, save_trainable
from composer.spec.load import load_spec
from composer.train.loop import inputs

SMALL = ["inputs.video.size=32", "inputs.video.frames=4"]
SETS = [a for s in SMALL for a in ("--set", s)]
CLASSES = ["archery", "juggling", "surfing"]
SEED = 7


def checkpoint(path: Path, spec_path: str) -> Path:
    """A tiny checkpoint as `composer run` writes it, with trained-looking (non-zero) weight updates."""
    torch.manual_seed(SEED)
    model = compile_spec(load_spec(spec_path, SMALL), BuildOptions(device="cpu", tiny=True, num_classes=3))
    with torch.no_grad():
        for p in model.trainable_state().values():
            p.add_(torch.randn_like(p) * 0.05)
    save_trainable(model, path, {"classes": CLASSES, "seed": SEED, "size": "tiny"})
    return path


def composed_scores(spec_path: str, ckpt: Path, clips: torch.Tensor) -> torch.Tensor:
    """The composed model's scores, built independently of the exporter (same seed, same checkpoint)."""
    torch.manual_seed(SEED)
    model = compile_spec(load_spec(spec_path, SMALL), BuildOptions(device="cpu", tiny=True, num_classes=3))
    load_trainable(model, ckpt)
    model.train(False)
    with torch.no_grad():
        return model(inputs(model.spec, clips, None, CLASSES), outputs=[model.graph.predict])[model.graph.predict]


def export(*args) -> object:
    return CliRunner().invoke(main, ["export", *map(str, args), *SETS])


def test_onnx_export_matches_the_composed_model_in_onnxruntime(tmp_path):
    import onnx
    import onnxruntime

    spec = "specs/baselines/clip-adapter.yaml"
    ckpt = checkpoint(tmp_path / "adapter.safetensors", spec)
    result = export(spec, "--checkpoint", ckpt, "--format", "onnx", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "max |difference| from the composed model" in result.output
    record = json.loads((tmp_path / "out" / "export.json").read_text())
    assert record["max_abs_difference"] < 1e-5 and record["opset"] >= 18
    assert record["checkpoint_sha256"] and record["input"]["shape"] == ["B", 4, 3, 32, 32]
    assert (record["size"], record["weights"], record["seed"]) == ("tiny", "random", SEED)  # how the backbones were made
    assert {"clip.text", "prompt", "ce"} <= set(record["dropped"]) and record["frozen_constants"] == ["class_emb"]
    assert (tmp_path / "out" / "classes.txt").read_text().split("\n")[:3] == CLASSES

    graph = onnx.load(str(tmp_path / "out" / "model.onnx"))
    names = [i.name for i in graph.graph.initializer]
    assert any(n.startswith("backbones.clip.model.visual.transformer.") for n in names)  # named as in torch
    assert not [n for n in names if "token_embedding" in n or n.startswith("backbones.clip.model.transformer.")]
    clips = torch.rand(4, 4, 3, 32, 32, generator=torch.Generator().manual_seed(11))  # a batch size never traced
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"video": clips.numpy()})[0])
    want = composed_scores(spec, ckpt, clips)
    assert got.shape == (4, 3) and (got - want).abs().max() < 1e-5


def test_lora_merges_into_an_exported_program_that_loads_back(tmp_path):
    spec = "specs/baselines/clip-lora.yaml"
    ckpt = checkpoint(tmp_path / "lora.safetensors", spec)
    result = export(spec, "--checkpoint", ckpt, "--format", "exported-program", "--out", tmp_path / "ep",
                    "--input", "uint8")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "ep" / "export.json").read_text())
    assert record["merged_weight_deltas"] == 24 and record["input"]["dtype"] == "uint8"
    program = torch.export.load(str(tmp_path / "ep" / "model.pt2"))
    assert not [n for n in program.state_dict if "lora_" in n]  # merged: no peft layer left
    assert any("attn" in n for n in program.state_dict)
    pixels = torch.randint(0, 256, (3, 4, 3, 32, 32), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    with torch.no_grad():
        got = program.module()(pixels)
    want = composed_scores(spec, ckpt, pixels.float() / 255)
    assert (got - want).abs().max() < 1e-5
    assert (got - composed_scores(spec, ckpt, pixels.float() / 255 * 0.5)).abs().max() > 1e-3  # it looks at pixels

    # a tolerance no merge meets: exit 1 with the number
    strict = export(spec, "--checkpoint", ckpt, "--format", "torchscript", "--out", tmp_path / "ts",
                    "--tolerance", "1e-12")
    assert strict.exit_code == 1, strict.output
    assert "differs from the composed model by" in strict.output and "more than --tolerance 1e-12" in strict.output


def test_dora_torchscript_loads_back_without_peft_layers(tmp_path):
    spec = "specs/baselines/dinov2-dora-linear.yaml"
    ckpt = checkpoint(tmp_path / "dora.safetensors", spec)
    result = export(spec, "--checkpoint", ckpt, "--format", "torchscript", "--out", tmp_path / "ts",
                    "--classes", "a,b,c")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ts" / "classes.txt").read_text() == "a\nb\nc\n"
    model = torch.jit.load(str(tmp_path / "ts" / "model.pt"))
    names = [n for n, _ in model.named_parameters()]
    assert names and not [n for n in names if "lora_" in n or "base_layer" in n]
    clips = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert (model(clips) - composed_scores(spec, ckpt, clips)).abs().max() < 1e-5


def test_refusals(tmp_path):
    trains = export("specs/baselines/clip-lora.yaml", "--size", "tiny", "--format", "onnx", "--out", tmp_path / "a",
                    "--classes", "a,b")
    assert trains.exit_code == 2 and "without --checkpoint" in trains.output

    spec = "specs/papers/temporal-prompts-dual-text.yaml"  # its Chinese labels come from the dataset
    ckpt = checkpoint(tmp_path / "tp.safetensors", spec)
    missing = export(spec, "--checkpoint", ckpt, "--format", "torchscript", "--out", tmp_path / "b")
    assert missing.exit_code == 2
    assert "component 'chinese_labels' (class_texts)" in missing.output
    assert "--set components.chinese_labels.params.file=" in missing.output
    assert not (tmp_path / "b" / "model.pt").exists()

    with pytest.raises(DataError, match="pip install"):
        require(replace(FORMATS["onnx"], packages=("no_such_package_here",)))


def test_a_per_clip_pretrained_run_of_a_tower_with_weight_deltas_is_refused(tmp_path):
    """Merged LoRA weights cannot be switched off again for a `.pretrained` run on every clip."""
    spec = tmp_path / "reference.yaml"
    spec.write_text("extends: clip-lora\nname: reference\nflow:\n  reference: {call: clip.visual.pretrained, "
                    "in: [video]}\n  ref_emb: {call: pool, in: [reference]}\n  ref_logits: {call: head, in: "
                    "[ref_emb, class_emb]}\npredict: ref_logits\n")
    ckpt = checkpoint(tmp_path / "ref.safetensors", str(spec))
    result = export(spec, "--checkpoint", ckpt, "--format", "torchscript", "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "tower run clip.visual.pretrained runs on every clip without the weight deltas" in result.output
    assert not (tmp_path / "out" / "model.pt").exists()


def test_a_per_clip_part_reading_text_is_named():
    """The guard behind the refusal: a node run on every clip that reads something other than a tensor."""
    torch.manual_seed(0)
    model = compile_spec(load_spec("specs/baselines/clip-zero-shot.yaml", SMALL),
                         BuildOptions(device="cpu", tiny=True, num_classes=3))
    parts = split(model)
    assert parts.constants == ("class_emb",)
    values = {"class_emb": torch.zeros(3, 8)}
    check_constants(model, parts, values)  # a tensor: fine
    with pytest.raises(SpecError, match=r"component 'head' \(cosine_logits\) reads 'class_emb' \(list"):
        check_constants(model, parts, {"class_emb": ["a photo of archery"]})


def test_msta_traces_to_torchscript(tmp_path):
    """MSTA's gradient-scaling autograd Function is left out without autograd (TorchScript cannot save one)."""
    spec = "specs/papers/msta.yaml"
    ckpt = checkpoint(tmp_path / "msta.safetensors", spec)
    result = export(spec, "--checkpoint", ckpt, "--format", "torchscript", "--out", tmp_path / "ts")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "ts" / "export.json").read_text())
    assert record["max_abs_difference"] < 1e-5
    assert {"viclip.text", "consistency", "spatial", "temporal", "ce"} <= set(record["dropped"])
