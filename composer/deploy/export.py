"""`composer export`: a trained spec as one self-contained file (ONNX, TorchScript or a torch.export program),
or its LoRA/DoRA as PEFT adapter folders (`--format peft`, compiler/peft_format.py).

The model is built exactly as `composer predict` builds it (deploy/predict.py: the checkpoint's classes, seed
and size), on the CPU in fp32. A sample batch goes through the composed model; the tensors it computes from
the class names alone become the inference module's constants (compiler/inference.py), weight deltas are merged,
and the module is written (compiler/serialize.py). The written file is then run on other clips, at another
batch size than the traced one, and its largest absolute difference from the composed model is recorded:
a file that differs by more than the tolerance is reported as a failure (exit 1), never handed over silently.
"""

from __future__ import annotations

import importlib.metadata
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from composer.compiler.inference import clip_shape, inference_model, node_label, split
from composer.compiler.peft_format import largest_difference, write_adapters
from composer.compiler.serialize import FORMATS, require, run_file, versions, write
from composer.components.registry import get_kind
from composer.deploy.predict import PredictOptions, Predictor
from composer.errors import DataError, SpecError
from composer.files import atomic_write_bytes, file_sha256
from composer.rundir.checkpoint import weights_file
from composer.train.loop import inputs
from composer.version import composer_version

DEFAULT_TOLERANCE = 1e-4
PEFT = "peft"  # not an inference file: the weight deltas as PEFT adapter folders
TRACE_CLIPS = 2  # the batch traced (a batch of one would fix the batch dimension at 1 in the exported graph)
CHECK_CLIPS = 3  # the batch checked: other clips, another batch size than the traced one


@dataclass
class ExportOptions:
    format: str
    out: Path
    checkpoint: str | None = None
    classes: list[str] | None = None  # default: the checkpoint's
    tolerance: float = DEFAULT_TOLERANCE
    uint8: bool = False  # the exported model takes uint8 pixels (0-255) instead of floats in [0, 1]
    size: str | None = None
    seed: int | None = None
    weights: str | None = None  # "demo" or "random"; default: the checkpoint's, else random at tiny size
    sets: list[str] = field(default_factory=list)
    unsets: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    path: Path  # the model file
    record: dict[str, Any]  # what export.json holds

    @property
    def within_tolerance(self) -> bool:
        return self.record["max_abs_difference"] <= self.record["tolerance"]


def _sample(model, uint8: bool, clips: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random clips in the exported model's dtype, and the same clips as the composed model takes them."""
    g = torch.Generator().manual_seed(seed)
    shape = clip_shape(model, clips)
    if uint8:
        pixels = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
        return pixels, pixels.float() / 255.0
    floats = torch.rand(shape, generator=g)
    return floats, floats


def blamed_part(model, error: BaseException) -> tuple[str | None, str]:
    """The spec part an error came from, by name and as a label: a component whose kind's source file appears
    in the error's traceback or message (exporters quote the user code they stopped at), the last one quoted;
    else such a backbone."""
    text = "".join(traceback.format_exception(error))

    def last(files: dict[str, str]) -> str | None:
        found = {name: text.rfind(module.replace(".", "/") + ".py") for name, module in files.items()}
        name = max(found, key=found.get, default=None)
        return name if name is not None and found[name] >= 0 else None

    components = {n: (get_kind(c.kind).build or get_kind(c.kind).params).__module__
                  for n, c in model.spec.components.items()}
    name = last(components)
    if name is not None:
        return name, f"component '{name}' ({model.spec.components[name].kind})"
    name = last({n: type(b).__module__ for n, b in model.backbones.items()})
    if name is not None:
        return name, f"backbone '{name}' ({model.backbones[name].family})"
    return None, "an unknown part"


def _predictor(spec_path: str, options: ExportOptions) -> Predictor:
    """The model exactly as `composer predict` builds it, on the CPU in fp32."""
    return Predictor(spec_path, PredictOptions(checkpoint=options.checkpoint, classes=options.classes,
                                               size=options.size, seed=options.seed, weights=options.weights,
                                               device="cpu", precision="fp32", sets=options.sets, unsets=options.unsets))


def _source(options: ExportOptions, predictor: Predictor, model) -> dict[str, Any]:
    checkpoint = weights_file(options.checkpoint) if options.checkpoint else None
    tiny = any(b.request.tiny for b in model.backbones.values())
    return {"checkpoint": str(checkpoint) if checkpoint else None,
            "checkpoint_sha256": file_sha256(checkpoint) if checkpoint else None,
            "size": "tiny" if tiny else "full", "seed": predictor.seed,
            # the backbone weights: demo or random tiny ones, or the spec's own at full size
            "weights": predictor.weights or ("random" if tiny else "spec")}


def export_peft(spec_path: str, options: ExportOptions) -> ExportResult:
    """The spec's LoRA/DoRA as PEFT adapter folders (compiler/peft_format.py), one per backbone, each checked
    by loading it into the library's model with PEFT and comparing the towers' outputs, as loaded and merged."""
    predictor = _predictor(spec_path, options)
    model = predictor.model
    options.out.mkdir(parents=True, exist_ok=True)
    written = write_adapters(model, options.out)
    difference = largest_difference(model, written)
    adapters = {name: {"folder": str(folder), "components": written.components[name],
                       "base_model_name_or_path": json.loads((folder / "adapter_config.json").read_text())[
                           "base_model_name_or_path"]} for name, folder in written.folders.items()}
    record = {"spec": spec_path, "name": model.spec.name, "format": "peft", "adapters": adapters,
              **_source(options, predictor, model), "not_in_peft_format": written.left_out,
              "max_abs_difference": difference, "tolerance": options.tolerance,
              "checked_on": "every tower of each backbone, the library model with the adapter as PEFT loads it "
                            "and merged (merge_and_unload), against composer's tower with its weight deltas",
              "versions": {"composer": composer_version(), **{p: importlib.metadata.version(p) for p in ("torch", "peft")}}}
    atomic_write_bytes(options.out / "export.json", (json.dumps(record, indent=1, ensure_ascii=False) + "\n")
                       .encode("utf-8"))
    return ExportResult(options.out, record)


def export_spec(spec_path: str, options: ExportOptions) -> ExportResult:
    """Build, freeze, merge, write and verify; returns the written file and its record (also in export.json)."""
    if options.format == PEFT:
        return export_peft(spec_path, options)
    if options.format not in FORMATS:
        raise DataError(f"unknown format {options.format!r}; one of {', '.join(FORMATS)}")
    fmt = FORMATS[options.format]
    require(fmt)
    predictor = _predictor(spec_path, options)
    model, spec, classes = predictor.model, predictor.spec, predictor.classes
    parts = split(model)
    sample, as_composed = _sample(model, options.uint8, TRACE_CLIPS, seed=0)
    check, check_composed = _sample(model, options.uint8, CHECK_CLIPS, seed=1)
    values, reference = _composed_outputs(model, spec, classes, as_composed, check_composed)
    before = set(model.components) | {f"{b}.{t}" for b, m in model.backbones.items() for t in m.towers}
    module, merged = inference_model(model, values, options.uint8)
    after = set(module.components) | {f"{b}.{t}" for b, m in module.backbones.items() for t in m.towers}

    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / fmt.file
    details, scores = _write_and_run(fmt, module, sample, check, path, model)
    difference = float((scores - reference).abs().max())

    record = {
        "spec": spec_path, "name": spec.name, "format": fmt.name, "file": fmt.file,
        **_source(options, predictor, model),
        "input": {"name": "video", "shape": ["B", *clip_shape(model, 1)[1:]],
                  "dtype": "uint8" if options.uint8 else "float32",
                  "range": "0-255" if options.uint8 else "0-1", "layout": "RGB"},
        "output": {"name": "scores", "shape": ["B", len(classes)], "meaning": "class scores (logits), in the order "
                   "of classes.txt; softmax gives probabilities"},
        "normalisation": "inside the model (each backbone's own mean and std)",
        "classes": len(classes),
        "frozen_constants": list(parts.constants),
        "merged_weight_deltas": len(merged),
        "dropped": sorted(before - after),
        "runs": [node_label(model, n) for n in parts.per_clip],
        "precision": "fp32",
        "max_abs_difference": difference,
        "checked_on": f"{CHECK_CLIPS} random clips (traced on {TRACE_CLIPS} others)",
        "tolerance": options.tolerance,
        "opset": details.get("opset"),
        "versions": {"composer": composer_version(), **versions(fmt)},
    }
    atomic_write_bytes(options.out / "classes.txt", "".join(f"{c}\n" for c in classes).encode("utf-8"))
    atomic_write_bytes(options.out / "export.json", (json.dumps(record, indent=1, ensure_ascii=False) + "\n")
                       .encode("utf-8"))
    return ExportResult(path, record)


def _composed_outputs(model, spec, classes: list[str], traced, checked) -> tuple[dict, torch.Tensor]:
    """The composed model's outputs on the trace clips (all of them: what the inference module's constants
    are cut from) and its class scores on the check clips (what the written file must reproduce)."""
    try:
        with torch.no_grad():
            values = model(inputs(spec, traced, None, classes), outputs=[model.graph.predict])
            reference = model(inputs(spec, checked, None, classes), outputs=[model.graph.predict])
    except DataError as e:  # class texts from a dataset (`@name`), missing here, or a file without these classes
        name, label = blamed_part(model, e)
        if name not in spec.components or not get_kind(spec.components[name].kind).binds_dataset:
            raise
        raise DataError(f"cannot export {spec.name}: {label}: {e}; point it at a file with --set "
                        f"components.{name}.params.file=/path/texts.json") from None
    reference = reference[model.graph.predict].float()
    if reference.shape[-1] != len(classes):
        raise DataError(f"the model scores {reference.shape[-1]} classes but {len(classes)} class names were given; "
                        "give one name per class, in the order it was trained on")
    return values, reference


def _write_and_run(fmt, module, sample, check, path: Path, model) -> tuple[dict, torch.Tensor]:
    """Write the file, then run it (its own runtime) on the check clips; an exporter's failure is one line that
    names the part of the spec that does not export."""
    try:
        return write(fmt, module, sample, path), run_file(fmt, path, check)
    except (SpecError, DataError):
        raise
    except Exception as e:  # the exporters raise many types; the message names the part and the first line
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise SpecError(f"cannot export {model.spec.name} as {fmt.name}: {blamed_part(model, e)[1]} does not "
                        f"export ({type(e).__name__}: {first.strip()[:300]})") from None
