"""`composer export SPEC`: write an inference file (ONNX, TorchScript, torch.export) with frozen classes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from composer.commands.common import Finite, fail_on_spec_errors
from composer.commands.groups import BACKBONE, CHECKPOINT, FORMAT, OUT, SPEC
from composer.commands.options import fill

EXPORT_FORMAT = FORMAT.but(type=click.Choice(["onnx", "torchscript", "exported-program", "peft"]), required=True,
                           default=None, show_default=False, to="format",
                           help="onnx (torch.onnx dynamo exporter, model.onnx), torchscript (torch.jit.trace, "
                           "model.pt), exported-program (torch.export, model.pt2), or peft: the LoRA/DoRA of each "
                           "backbone as a PEFT adapter folder for the library's own model (timm's DINOv2, "
                           "open_clip's CLIP, transformers' VideoMAE)")
EXPORT_OUT = OUT.but(required=True, default=None, show_default=False, value=lambda p: Path(p["out"]),
                     help="folder to write the model file, classes.txt and export.json into")


@click.command(name="export")
@click.argument("spec", metavar="SPEC")
@SPEC
@EXPORT_FORMAT
@CHECKPOINT
@EXPORT_OUT
@click.option("--tolerance", type=Finite(min=0), default=1e-4, show_default=True,
              help="the largest absolute difference from the composed model accepted on the sample clips")
@click.option("--input", "input_dtype", type=click.Choice(["float32", "uint8"]), default="float32",
              show_default=True, help="what the exported model takes: float32 pixels in [0, 1] or uint8 pixels "
              "(divided by 255 inside)")
@BACKBONE
@fail_on_spec_errors
def export(spec, **kw):
    """Export a spec as one inference file: video clips in, class scores out.

    \b
    composer export SPEC --checkpoint runs/.../checkpoints/best.safetensors --format onnx --out deploy/
    composer export clip-zero-shot --format onnx --classes "archery,juggling,surfing" --out zs/
    composer export dinov2-dora-linear --checkpoint runs/.../checkpoints/best.safetensors --format peft --out peft/

    The exported model takes clips [B, T, 3, H, W] (float in [0, 1], or uint8 with --input uint8) and
    returns [B, C] class scores; each backbone normalises inside. Class-name embeddings are computed
    once and frozen in (no text tower, no tokenizer), LoRA/DoRA are merged into the backbone weights
    with peft, and losses and everything only they use are left out. The file is run back on sample
    clips and compared with the composed model (docs/export.md).

    --format peft writes each backbone's LoRA/DoRA as a PEFT adapter folder (adapter_config.json,
    adapter_model.safetensors) against the library's own model, loads it back with PEFT (as is and
    merged) and compares the towers' outputs; the trainable parts PEFT has no format for are listed.

    Exit status: 0 when the file matches within --tolerance; 1 when it does not (the difference is
    printed; the files stay for inspection); 2 for a spec or part that cannot be exported, or a mistake
    in the arguments."""
    from composer.deploy.export import ExportOptions, export_spec
    from composer.deploy.predict import read_classes

    options = fill(ExportOptions, kw, SPEC, CHECKPOINT, BACKBONE, EXPORT_FORMAT, EXPORT_OUT, tolerance=kw["tolerance"],
                   classes=read_classes(kw["class_names"], kw["classes_file"]), uint8=kw["input_dtype"] == "uint8")
    result = export_spec(spec, options)
    _report(result)
    if not result.within_tolerance:
        r = result.record
        click.echo(f"error: the exported model differs from the composed model by {r['max_abs_difference']:.3g}, "
                   f"more than --tolerance {r['tolerance']:.3g}; do not use {result.path}", err=True)
        sys.exit(1)


def _report(result) -> None:
    r = result.record
    if r["format"] == "peft":
        for name, adapter in r["adapters"].items():
            click.echo(f"wrote {adapter['folder']} (PEFT adapter of backbone '{name}' for "
                       f"{adapter['base_model_name_or_path']}; components {', '.join(adapter['components'])})")
        if r["not_in_peft_format"]:
            click.echo(f"not in PEFT's format (in the checkpoint only): {', '.join(r['not_in_peft_format'])}")
    else:
        click.echo(f"wrote {result.path} ({r['format']}, {r['classes']} classes, input {r['input']['dtype']}"
                   f"[{', '.join(map(str, r['input']['shape']))}]); classes.txt and export.json beside it")
    click.echo(f"max |difference| from the composed model: {r['max_abs_difference']:.3g} "
               f"(tolerance {r['tolerance']:.3g})")
