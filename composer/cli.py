"""The command line: thin click commands over the pipeline spec -> graph -> plan -> build -> run.

Every mistake in a spec (or in a command's arguments about it) ends with a located message and exit
status 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from composer.errors import DataError, SpecError
from composer.spec.limits import MAX_CLASSES, MAX_INT, MAX_WORKERS, check_batch

if TYPE_CHECKING:  # the run layer is imported inside the commands that need it, so others start faster
    from composer.train.run import RunOptions


def _fail_on_spec_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            click.echo(str(e), err=True)
            sys.exit(2)
        except DataError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:  # a folder that does not exist or cannot be written, a full disk: the user's to fix
            where = f" {e.filename}" if e.filename else ""
            click.echo(f"error: cannot read or write{where}: {e.strerror or e}", err=True)
            sys.exit(2)

    return wrapper


def _console(stderr: bool = False) -> Console:
    """A rich console that fits the terminal, or, when the output is a file or a pipe, never cuts or wraps
    a table at 80 columns (rich's default outside a terminal)."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not (hasattr(stream, "isatty") and stream.isatty())
    return Console(stderr=stderr, width=WIDE if wide else None, soft_wrap=wide)


WIDE = 1000  # columns outside a terminal: tables take the width they need


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click's lets nan through: every comparison with it is false)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class NonEmptyPath(click.Path):
    """A click.Path that refuses an empty value ("" would silently mean the current folder: an export or a
    prepared copy written into it, a run directory's "."; for -o, standard output) and one no file system
    takes (a name over 255 bytes, a path over 4096: the OS raises where each first touches it)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path; leave the option out for its default", param, ctx)
        raw = os.fsencode(value) if isinstance(value, str) else bytes(value)
        if len(raw) > 4096 or any(len(part) > 255 for part in raw.split(b"/")):
            self.fail("a path longer than a file system takes (names up to 255 bytes, 4096 in all)", param, ctx)
        return super().convert(value, param, ctx)


def _written(output: str | Path, write) -> None:
    """Call `write` (which writes `output`); a path that cannot be written is a one-line error, exit 2."""
    try:
        write()
    except OSError as e:
        raise DataError(f"cannot write {output}: {e.strerror or e}") from None


# the bounds of the options that count or seed something (docs/language.md, "Limits"); refused by click: exit 2
COUNT = click.IntRange(1, MAX_INT)  # epochs, steps, batch sizes: at least one, within 64 bits
SEED = click.IntRange(-MAX_INT, MAX_INT)  # a seed within 64 bits, as in a spec
WORKERS = click.IntRange(0, MAX_WORKERS)  # worker processes (0: load in the main process)


def spec_options(fn):
    fn = click.option("--unset", "unsets", multiple=True, metavar="PATH",
                      help="remove a key, e.g. --unset components.adapter")(fn)
    fn = click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                      help="override a field, e.g. --set components.adapter.params.dim=128 (repeatable)")(fn)
    return fn


def _load(spec_path: str, sets, unsets):
    from composer.spec.load import load_spec

    return load_spec(spec_path, sets, unsets)


def _compile(spec, tiny: bool = False, plan: bool = True, classes: int | None = None, recompute=True,
             weights: str | None = None):
    from composer.build.compile import BuildOptions, compile_spec

    return compile_spec(spec, BuildOptions(device="meta", tiny=tiny, plan=plan, recompute=recompute,
                                           num_classes=classes, weights=weights))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="composer-video", prog_name="composer")
def main() -> None:
    """composer: compose video action-recognition models from frozen backbones and small trainable parts.

    A spec (YAML, or the text syntax in .comp files) says which backbones are used, where each
    trainable part attaches and how tensors flow to the losses. See docs/language.md.

    \b
    composer build SPEC      check a spec and show what it builds (no weights needed)
    composer validate SPEC   check only
    composer diff A B        what changed between two specs, and what it does to the model
    composer graph SPEC      export the composition graph
    composer fmt SPEC        convert between YAML and the text syntax
    composer run SPEC        train and evaluate on a dataset (--dataset demo works offline)
    composer sweep SPEC...   run many variants (--grid, several specs, --seeds) into one results table
    composer eval SPEC       evaluate a checkpoint
    composer predict SPEC V  classify video files (zero-shot with --classes, or with a checkpoint)
    composer export SPEC     write an inference file (ONNX, TorchScript, torch.export) with frozen classes
    composer plot RUN_DIR    draw a run's learning curves and confusion matrices (or overlay runs)
    composer card RUN_DIR    write a run's model card (RUN_DIR/README.md)
    composer data check      find bad videos and split lines before a long run
    composer data prepare    transcode a dataset once into a copy that decodes fast
    composer report SPEC...  parameter and FLOP counts against the papers' figures
    composer kinds           list the component kinds
    composer check-kind NAME run the attachment contract on a kind (a plugin's too)
    composer specs           list the shipped specs (SPEC may be one of their names)
    composer schema          write the JSON Schema of a YAML spec, for editors
    composer lsp             the language server for editors (stdio)
    """


@main.command()
@click.argument("spec", metavar="SPEC")
@spec_options
@click.option("--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="tiny swaps every backbone for its small random-weight variant")
@click.option("--classes", type=click.IntRange(1, MAX_CLASSES), default=None,
              help="number of classes (default: the spec's classes.count)")
@click.option("--no-plan", is_flag=True, help="build without the plan (autograd everywhere, no caching)")
@click.option("--recompute", type=click.Choice(["auto", "all", "none"]), default="auto", show_default=True,
              help="which frozen blocks the plan recomputes in the backward pass instead of storing: auto recomputes "
                   "only what does not fit the memory budget at the batch size (the fastest plan that fits); all "
                   "and none are for comparison")
@click.option("--no-recompute", is_flag=True, help="the same as --recompute none")
@click.option("--no-flops", is_flag=True, help="skip counting FLOPs")
@click.option("--batch-size", type=COUNT, default=None,
              help="print the memory bill of a training step at this batch size (default with --memory-budget: "
                   "the spec's train.batch_size)")
@click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32"]), default=None,
              help="the training precision the bill assumes (default: the spec's train.precision; auto is bf16 "
                   "on a GPU that supports it, else fp32)")
@click.option("--memory-budget", default=None, metavar="SIZE",
              help="memory to fit, e.g. 24GiB, 80G, 500MiB (default: 90%% of this GPU's free memory, else the "
                   "available RAM); the bill then gives the largest batch size that fits")
@click.option("--weights", type=click.Choice(["demo", "random"]), default=None,
              help="with --size tiny: check that demo weights exist for every backbone (nothing is loaded)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of tables")
@_fail_on_spec_errors
def build(spec, sets, unsets, size, classes, no_plan, recompute, no_recompute, no_flops, batch_size, precision,
          memory_budget, weights, as_json):
    """Check SPEC and show what it builds: every node, where each attachment landed (per layer),
    parameters per part (total and trainable), GFLOPs per clip and the plan.

    With --batch-size or --memory-budget it adds the memory bill of one training step (weights,
    gradients, optimizer state, activations kept for backward, the backward's temporaries, the peak)
    and the largest batch size that fits the budget (--json: the `memory` object and `max_batch_size`).

    Runs on the meta device: no weights are loaded, so full-size models build in seconds, offline."""
    from composer.build.memory import parse_bytes
    from composer.build.summary import render, report

    try:
        budget = parse_bytes(memory_budget) if memory_budget is not None else None
    except ValueError as e:
        click.echo(f"error: --memory-budget: {e}", err=True)
        sys.exit(2)
    recompute = "none" if no_recompute else recompute
    model = _compile(_load(spec, sets, unsets), tiny=size == "tiny", plan=not no_plan, classes=classes,
                     recompute=recompute != "none", weights=weights)
    asked = batch_size is not None or budget is not None
    if asked:  # pricing the choice takes a meta-device bill per candidate block: only when a bill is asked for
        memory = _memory(model, batch_size, precision, budget, choose=recompute == "auto")
    info = report(model, flops=not no_flops)
    if asked:
        info.update(memory)
    elif recompute == "auto" and not no_plan:
        info["plan"].append("recomputation: auto, chosen by `composer run` against the device's memory at its "
                            "batch size (shown here as if all were recomputed; --batch-size or --memory-budget "
                            "shows the choice)")
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        render(info, _console())


def _memory(model, batch_size: int | None, precision: str | None, budget: int | None, choose: bool = False,
            source: str = "--memory-budget") -> dict:
    """The `memory` and `max_batch_size` entries of `composer build`; exits 2 on a budget below the weights.
    `choose`: first re-plan the model's recomputation for the budget (--recompute auto). `source`: where a
    given `budget` came from."""
    from composer.build.budget import choose_recompute
    from composer.build.memory import MemoryModel, bill_lines, default_budget, format_bytes
    from composer.build.precision import store_frozen_in

    train = model.spec.train
    if batch_size is not None:
        too_big = check_batch(model.spec, batch_size, "--batch-size")
        if too_big:
            raise DataError(too_big)
    if precision is None:
        precision = train.precision
        if precision == "auto":
            import torch

            precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if budget is None:
        budget, source = default_budget() or (None, None)
    store_frozen_in(model, precision)  # as `composer run` builds it, so the bill counts what a run holds
    if choose and budget is not None and MemoryModel(model, precision).bill(1).weights <= budget:
        choose_recompute(model, precision, batch_size or train.batch_size, budget, source)
    memory = MemoryModel(model, precision)
    bill = memory.bill(batch_size or train.batch_size)
    out = {"memory": bill.as_json(), "memory_budget": budget,
           "memory_budget_source": source, "max_batch_size": None}
    if budget is None:
        return out
    if budget < bill.weights:
        lines = "\n".join(f"  {line}" for line in bill_lines(bill.as_json()))
        click.echo(f"error: the memory budget {format_bytes(budget)} ({source}) is smaller than the weights alone "
                   f"({format_bytes(bill.weights)}); give a larger --memory-budget, or a smaller model. The bill:\n"
                   f"{lines}", err=True)
        sys.exit(2)
    out["max_batch_size"] = memory.max_batch_size(budget)
    return out


@main.command()
@click.argument("spec", metavar="SPEC")
@spec_options
@_fail_on_spec_errors
def validate(spec, sets, unsets):
    """Check SPEC (syntax, schema, sites, shapes, graph) without showing the build."""
    model = _compile(_load(spec, sets, unsets))
    click.echo(f"{spec}: ok ({len(model.graph.attachments)} attachments, {len(model.graph.calls)} flow components)")


@main.command()
@click.argument("spec_a", metavar="A")
@click.argument("spec_b", metavar="B")
@spec_options
@click.option("--set-a", "sets_a", multiple=True, metavar="PATH=VALUE", help="override a field of A only")
@click.option("--unset-a", "unsets_a", multiple=True, metavar="PATH", help="remove a key of A only")
@click.option("--set-b", "sets_b", multiple=True, metavar="PATH=VALUE", help="override a field of B only")
@click.option("--unset-b", "unsets_b", multiple=True, metavar="PATH", help="remove a key of B only")
@click.option("--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="tiny swaps every backbone for its small random-weight variant (on both sides)")
@click.option("--no-flops", is_flag=True, help="skip counting FLOPs")
@click.option("--batch-size", type=COUNT, default=None,
              help="compare the memory bills of a training step at this batch size (as `composer build "
                   "--batch-size`; default with --memory-budget: each spec's train.batch_size)")
@click.option("--precision", type=click.Choice(["bf16", "fp16", "fp32"]), default=None,
              help="the training precision the bills assume (default: each spec's train.precision)")
@click.option("--memory-budget", default=None, metavar="SIZE",
              help="memory to fit, e.g. 24GiB: also compare the largest batch size that fits")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of tables")
@click.option("--exit-code", is_flag=True, help="exit with status 1 when A and B differ (as `git diff --exit-code`)")
@_fail_on_spec_errors
def diff(spec_a, spec_b, sets, unsets, sets_a, unsets_a, sets_b, unsets_b, size, no_flops, batch_size, precision,
         memory_budget, as_json, exit_code):
    """Show what changed from spec A to spec B, and what the change does to the built model.

    \b
    composer diff msta msta-few-shot
    composer diff specs/baselines/clip-adapter.yaml specs/baselines/clip-adapter.yaml \\
        --set-b components.adapter.site="clip.visual.blocks[8-12].mlp" --json

    Both specs are resolved as `composer build` resolves them (a path or a shipped name, `extends`
    merged, defaults filled in); --set/--unset apply to both, then --set-a/--unset-a to A only and
    --set-b/--unset-b to B only. Every changed path is listed with its old and new value and where
    each side set it (file:line:col, in the file that wrote the value: the spec or the one it extends;
    `<--set-b #1>` for an option; "(default)" for a value not written). Both are then built on the
    meta device: attachments added, removed or moved, trainable and total parameters, GFLOPs per
    clip, and with --batch-size or --memory-budget the memory bill of a training step (all numbers
    as `composer build --json` prints them). Identical specs print "no differences".

    Exit status: 0 (with --exit-code: 0 when identical, 1 when they differ); 2 when a spec does not
    load or fails its checks (the located error of that spec)."""
    from composer.build.diff import compare, render
    from composer.build.memory import parse_bytes
    from composer.build.summary import report
    from composer.spec.load import load_spec

    try:
        budget = parse_bytes(memory_budget) if memory_budget is not None else None
    except ValueError as e:
        click.echo(f"error: --memory-budget: {e}", err=True)
        sys.exit(2)
    billed = batch_size is not None or budget is not None
    source = "--memory-budget"
    if billed and budget is None:  # one default for both sides: the free memory changes between two readings
        from composer.build.memory import default_budget

        budget, source = default_budget() or (None, None)
    infos, loaded = [], []
    for arg, option, side_sets, side_unsets in ((spec_a, "--set-a", sets_a, unsets_a),
                                                (spec_b, "--set-b", sets_b, unsets_b)):
        spec = load_spec(arg, sets, unsets, side=(option, side_sets, side_unsets))
        model = _compile(spec, tiny=size == "tiny")
        memory = None
        if billed:  # as `composer build` bills it (--recompute auto)
            memory = _memory(model, batch_size, precision, budget, choose=True, source=source)
        info = report(model, flops=not no_flops)
        info.update(memory or {})
        loaded.append(spec)
        infos.append(info)
    result = compare(loaded[0], loaded[1], infos[0], infos[1], spec_a, spec_b)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        render(result, _console())
    sys.exit(1 if exit_code and not result["identical"] else 0)


@main.command()
@click.argument("spec", metavar="SPEC")
@spec_options
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "json", "svg", "png"]), default="mermaid",
              show_default=True, help="svg and png need Graphviz's dot program")
@click.option("-o", "--output", type=NonEmptyPath(dir_okay=False), help="write to a file instead of stdout")
@_fail_on_spec_errors
def graph(spec, sets, unsets, fmt, output):
    """Export the composition graph of SPEC: backbones as clusters with their attachments, frozen
    parts grey and trainable parts green, tensor shapes on the edges."""
    from composer.viz import export

    model = _compile(_load(spec, sets, unsets))
    if fmt in ("svg", "png"):
        data = export.render(export.to_dot(model), fmt)
        if output is None:
            raise SpecError(f"--format {fmt} writes binary data: give -o FILE")
        _written(output, lambda: Path(output).write_bytes(data))
        return
    text = {"dot": export.to_dot, "mermaid": export.to_mermaid, "json": export.to_json}[fmt](model)
    if output:
        _written(output, lambda: Path(output).write_text(text, encoding="utf-8"))
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("spec", metavar="SPEC")
@click.option("--to", "to", type=click.Choice(["yaml", "text"]), required=True, help="the syntax to write")
@click.option("--resolved", is_flag=True, help="write the spec with everything it extends merged in")
@click.option("-o", "--output", type=NonEmptyPath(dir_okay=False), help="write to a file instead of stdout")
@_fail_on_spec_errors
def fmt(spec, to, resolved, output):
    """Convert SPEC between YAML and the text syntax, losslessly (extends, overrides, deletions,
    comments and the spelling of numbers are kept as written; --resolved drops comments)."""
    from composer.spec.document import Document
    from composer.spec.load import read_document, resolve_document, validate
    from composer.spec.printer import write

    doc = resolve_document(spec) if resolved else read_document(spec)
    if resolved:
        data = validate(doc).model_dump(mode="json", by_alias=True, exclude_defaults=True)
        doc = Document(data, doc.where, doc.file)
    text = write(doc, to)
    if output:
        _written(output, lambda: Path(output).write_text(text, encoding="utf-8"))
    else:
        click.echo(text, nl=False)


def data_options(fn, required: bool = True, unless: str = "--resume"):
    """The dataset options; `required=False`: --dataset may be left out when `unless` is given."""
    options = [
        click.option("--dataset", required=required, help="ucf101, hmdb51, kinetics400, kinetics600, ssv2, diving48, "
                     "folder, list, or demo (generated offline)" + ("" if required else f"; required unless {unless}")),
        click.option("--data-root", type=NonEmptyPath(), default=None, help="the folder that holds the dataset"),
        click.option("--split", type=int, default=1, show_default=True, help="official split (UCF101, HMDB51)"),
        click.option("--skip-missing", is_flag=True, help="skip (and list) videos the split files name but that "
                     "are missing, instead of stopping"),
        click.option("--short-videos", type=click.Choice(["loop", "skip"]), default="loop", show_default=True,
                     help="videos with fewer frames than the spec samples: loop repeats their frames (0 1 2 0 1 2, "
                     "as MMAction2 does); skip leaves them out of training and scores them as wrong in testing"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_options(fn, sweep: bool = False):
    """The options of `composer run` (and, passed through to each run, of `composer sweep`, which has its own
    --out and --seeds)."""
    options = [
        click.option("--protocol", type=click.Choice(["supervised", "few-shot", "base-to-novel", "zero-shot"]),
                     default="supervised", show_default=True),
        click.option("--shots", type=COUNT, default=None, help="K videos per class (few-shot)"),
        click.option("--eval-dataset", default=None, help="the dataset whose classes are tested (zero-shot)"),
        click.option("--eval-root", type=NonEmptyPath(), default=None, help="its data root"),
        click.option("--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
                     help="tiny: small random-weight backbones and 64 px clips (offline, CPU)"),
        click.option("--weights", type=click.Choice(["demo", "random"]), default=None,
                     help="with --size tiny: demo loads the tiny backbones pretrained on captioned synthetic motion "
                     "that ship with composer (docs/demo-weights.md); random (the default at tiny size) draws them "
                     "from the seed"),
        click.option("--epochs", type=COUNT, default=None, help="override the spec's epochs (every stage)"),
        click.option("--batch-size", type=COUNT, default=None, help="the global batch of one optimiser step, split "
                     "evenly across processes (default: the spec's train.batch_size)"),
        click.option("--eval-batch-size", type=COUNT, default=None,
                     help="clips per evaluation forward on each process, test views included (default: the "
                     "per-process training batch)"),
        click.option("--lr", type=Finite(min=0, min_open=True), default=None,
                     help="override the spec's learning rate (every stage; train.groups' own rates stay)"),
        click.option("--workers", type=WORKERS, default=min(4, os.cpu_count() or 1), show_default=True,
                     help="DataLoader worker processes"),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: the GPU when there is one; under "
                     "torchrun or accelerate launch each process uses the GPU of its local rank)"),
        click.option("--precision", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), default=None,
                     help="default: the spec's (auto: bf16 where the GPU supports it, else fp32)"),
        *([] if sweep else [
            click.option("--seed", type=SEED, default=None),
            click.option("--out", type=NonEmptyPath(file_okay=False), default="runs", show_default=True,
                         help="where run directories go")]),
        click.option("--max-steps", type=COUNT, default=None, help="stop each epoch after this many steps"),
        click.option("--eval-every", type=click.IntRange(min=1), default=1, show_default=True,
                     help="test (single view) after every N epochs, and after the last"),
        click.option("--gpu-decode", is_flag=True, help="decode videos on the GPU with torchcodec (NVDEC); "
                     "loads in the main process"),
        click.option("--no-plan", is_flag=True, help="autograd everywhere, no caching, no recomputation"),
        click.option("--recompute", type=click.Choice(["auto", "all", "none"]), default="auto", show_default=True,
                     help="which frozen blocks are recomputed in the backward pass instead of stored: auto only "
                     "what does not fit the device's memory at the per-process batch (the fastest plan that fits); "
                     "all and none for comparison"),
        click.option("--no-recompute", is_flag=True, help="the same as --recompute none"),
        click.option("--cache-features", type=NonEmptyPath(file_okay=False), default=None,
                     help="when the video only goes through frozen towers: compute their outputs for un-augmented "
                     "training clips once, keep them in this folder, and train on them"),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (falls back to eager "
                     "with a message if compiling fails)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_extra_options(fn):
    """The options of `composer run` that `composer eval` has no use for (saving, progress, FSDP, trackers)."""
    options = [
        click.option("--save-every", type=click.IntRange(min=1), default=None,
                     help="also save the state to resume from every N optimiser steps (default: at epoch ends only)"),
        click.option("--progress-every", type=click.IntRange(min=1), default=None,
                     help="when the output is not a terminal (and in run.log): one progress line per N steps "
                     "(default: every tenth of an epoch)"),
        click.option("--fsdp", is_flag=True, help="shard a full fine-tune across GPUs (FSDP through Accelerate; "
                     "several processes on CUDA only)"),
        click.option("--log-with", "log_with", multiple=True, metavar="TRACKER",
                     help="tensorboard, mlflow, wandb, ... or none (repeatable; default: TensorBoard when installed)"),
        click.option("--tracking-uri", default=None, help="MLflow's tracking URI (default: a SQLite store in the run "
                     "directory)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run_options(kw: dict, sets, unsets) -> RunOptions:
    from composer.train.run import RunOptions

    return RunOptions(dataset=kw["dataset"], data_root=kw["data_root"], split=kw["split"], protocol=kw["protocol"],
                      shots=kw["shots"], eval_dataset=kw["eval_dataset"], eval_root=kw["eval_root"],
                      tiny=kw["size"] == "tiny", weights=kw["weights"], epochs=kw["epochs"],
                      batch_size=kw["batch_size"], lr=kw["lr"],
                      eval_batch_size=kw["eval_batch_size"],
                      workers=kw["workers"], device=kw["device"], precision=kw["precision"], seed=kw["seed"],
                      out=kw["out"], skip_missing=kw["skip_missing"], short_videos=kw["short_videos"],
                      max_steps=kw["max_steps"], eval_every=kw["eval_every"], save_every=kw.get("save_every"),
                      progress_every=kw.get("progress_every"),
                      gpu_decode=kw["gpu_decode"], plan=not kw["no_plan"],
                      recompute="none" if kw["no_recompute"] else kw["recompute"],
                      cache_features=kw["cache_features"], compile=kw["compile_"], fsdp=kw.get("fsdp", False),
                      log_with=list(kw.get("log_with", ())), tracking_uri=kw.get("tracking_uri"),
                      sets=list(sets), unsets=list(unsets))


# RunOptions fields -> the click parameters that set them (where the names differ)
_PARAMS = {"tiny": "size", "plan": "no_plan", "recompute": ("recompute", "no_recompute"), "compile": "compile_",
           "sets": "sets", "unsets": "unsets"}


def _typed(ctx: click.Context, options) -> dict:
    """The RunOptions fields the user typed on the command line (not click's defaults), with their values."""
    from dataclasses import asdict

    given = {}
    for name, value in asdict(options).items():
        params = _PARAMS.get(name, name)
        if any(ctx.get_parameter_source(p) not in (None, click.core.ParameterSource.DEFAULT)
               for p in (params if isinstance(params, tuple) else (params,))):
            given[name] = value
    return given


def _resume(ctx: click.Context, spec, resume: Path, options, overrides) -> tuple:
    """The options of the run in `resume` (run.json), checked against what was typed again."""
    from composer.spec.load import load_spec
    from composer.spec.printer import to_yaml
    from composer.train.resume import composer_version, read_record, resumed_options

    record = read_record(resume)
    if record.get("composer") != composer_version():
        click.echo(f"note: {resume} was made by composer {record.get('composer')}, this is {composer_version()}; "
                   "its record and checkpoints have the same layout, so it continues", err=True)
    given = _typed(ctx, options)
    if spec is not None:
        recorded = record["options"]
        sets = list(given.get("sets", recorded.get("sets", [])))
        if given.get("tiny", recorded.get("tiny")) and not any(x.startswith("inputs.video.size=") for x in sets):
            from composer.train.run import TINY_SIZE

            sets.append(f"inputs.video.size={TINY_SIZE}")
        dump = lambda s: to_yaml(s.model_dump(mode="json", by_alias=True, exclude_defaults=True))  # noqa: E731
        if dump(load_spec(spec, sets, given.get("unsets", recorded.get("unsets", [])))) != \
                dump(load_spec(str(resume / "spec.yaml"))):
            raise DataError(f"{spec} is not the spec {resume} ran ({resume / 'spec.yaml'}); "
                            "leave SPEC out to resume with the run's own")
    return resumed_options(record, given, list(overrides))


@main.command()
@click.argument("spec", metavar="SPEC", required=False)
@spec_options
@functools.partial(data_options, required=False)
@run_options
@click.option("--resume", type=NonEmptyPath(exists=True, file_okay=False, path_type=Path), default=None,
              help="continue an interrupted run from its run directory; everything else (spec, dataset, size, "
              "seed, every option) comes from its run.json")
@click.option("--override", "overrides", multiple=True, metavar="OPTION",
              help="with --resume: let OPTION differ from the run's record (repeatable); recorded in run.json. "
              "Only epochs, max-steps, eval-every, save-every, progress-every, workers, device, log-with and "
              "tracking-uri can change")
@run_extra_options
@click.pass_context
@_fail_on_spec_errors
def run(ctx, spec, sets, unsets, resume, overrides, **kw):
    """Train SPEC on a dataset and evaluate it with the paper's protocol.

    \b
    composer run specs/papers/tds-clip.yaml --dataset demo --size tiny --epochs 3
    composer run SPEC --dataset ucf101 --data-root /data/ucf101 --protocol few-shot --shots 8
    composer run --resume runs/tds-clip-20261122-101500
    composer run --resume RUN_DIR --epochs 40 --override epochs
    torchrun --nproc-per-node 4 -m composer.cli run SPEC --dataset kinetics400 --data-root /data/k400
    accelerate launch --num_processes 4 -m composer.cli run SPEC --dataset kinetics400 --data-root /data/k400

    --batch-size is the global batch, split evenly across the processes (it must divide).
    Writes runs/<spec>-<time>/ (spec, run.json, run.log, metrics.jsonl, checkpoints, summary, confusion, bad
    videos, pictures, and README.md: the run's model card) and prints the metrics.

    --resume RUN_DIR needs nothing else. It continues from the last saved state (an epoch's end, or the
    last --save-every step inside an epoch) and ends with the weights an uninterrupted run would have.
    An option given again must equal the recorded one; a different value is refused, unless --override
    names it (only options that do not change the experiment: see --override)."""
    from composer.train.evaluate import metrics_table
    from composer.train.run import Run

    if spec is None and resume is None:
        raise click.UsageError("give a SPEC, or --resume RUN_DIR")
    if resume is None and not kw["dataset"]:
        raise click.UsageError("Missing option '--dataset' (give it, or --resume RUN_DIR to continue a run)")
    if overrides and resume is None:
        raise click.UsageError("--override is for --resume: a new run takes every option as given")
    options = _run_options(dict(kw, dataset=kw["dataset"] or ""), sets, unsets)
    changes = []
    if resume is not None:
        options, changes = _resume(ctx, spec, resume, options, overrides)
    job = Run(spec, options, resume, changes=changes)
    summary = job.fit()
    if job.main:
        out = _console()
        lines = [metrics_table(summary)]
        if summary["bad_videos"]:
            lines.append(f"{len(summary['bad_videos'])} video(s) could not be decoded and were skipped; "
                         f"listed in {job.dir / 'bad_videos.txt'}")
        lines.append(f"run directory: {job.dir}")
        for line in lines:  # the results on stdout, and in run.log with the rest of the run's output
            out.print(line)
            job.log.to_file(line)
    job.finish()


# the options of `composer sweep` that are its own; every other one is passed to each `composer run`
_SWEEP_OWN = ("specs", "sets", "unsets", "grids", "seeds", "out", "shard", "dry_run")


def _passed_through(ctx: click.Context) -> list[str]:
    """The run options typed on the sweep's command line, as arguments for `composer run` (click's defaults
    are left to the run itself)."""
    args = []
    for param in ctx.command.params:
        if param.name in _SWEEP_OWN or ctx.get_parameter_source(param.name) in (
                None, click.core.ParameterSource.DEFAULT):
            continue
        flag, value = max(param.opts, key=len), ctx.params[param.name]
        if isinstance(param, click.Option) and param.is_flag:
            args += [flag] if value else []
        else:
            args += [a for v in (value if param.multiple else [value]) for a in (flag, str(v))]
    return args


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...",
              help="a spec path and the values it takes, read like --set values (repeatable: the variants are the "
              "cartesian product, applied to every SPEC); commas inside [...] or {...} do not split")
@spec_options
@click.option("--seeds", "--seed", "seeds", default=None, metavar="S1,S2,...",
              help="run each variant once per seed (--seed passed to each run); the table shows mean ± sample "
              "standard deviation and n")
@click.option("--out", type=NonEmptyPath(file_okay=False, path_type=Path), default=None,
              help="the sweep directory; give the same one again to resume  [default: sweeps/<spec>-<time>]")
@click.option("--shard", default=None, metavar="I/N",
              help="run only the runs whose index (0-based, in plan order) % N == I, e.g. one job of a SLURM "
              "array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; needs --out (shared by the shards)")
@click.option("--dry-run", is_flag=True, help="build every variant on the meta device and print its costs; no "
              "training, nothing written")
@functools.partial(data_options, required=False, unless="--dry-run")
@functools.partial(run_options, sweep=True)
@run_extra_options
@click.pass_context
@_fail_on_spec_errors
def sweep(ctx, specs, grids, sets, unsets, seeds, out, shard, dry_run, **kw):
    """Run many variants of a spec, each a `composer run` in its own process, and collect one results table.

    \b
    composer sweep msta --grid components.msta.params.dim=64,128,256 --grid train.lr=1e-3,3e-4 \\
        --dataset ucf101 --data-root /data/ucf101 --out sweeps/msta-dim-lr
    composer sweep specs/papers/ablations/temporal-prompts-*.yaml --dataset demo --size tiny --seeds 0,1,2
    composer sweep specs/papers/ablations/msta-*.yaml --dry-run      # the cost table, nothing trained

    Every option of `composer run` is passed to every run. Each variant's spec is built first (a bad
    --grid key or value, or two variants that are the same spec, stop the sweep before anything runs).
    The sweep directory holds sweep.json, results.md and results.csv (rewritten after every run),
    variants/<run>.json, runs/<run>/ and logs/<run>.log. A run that fails is recorded and the sweep goes
    on. The same command again with the same --out skips finished runs and reruns the others; another
    command on that directory is refused. See docs/sweeps.md.

    Exit status: 0 when every run (of this shard) finished, 1 when any failed, 2 for a mistake in the
    arguments."""
    from composer.train import sweep as sw
    from composer.train.run_options import check_run_options

    try:
        grid = [sw.parse_grid(g) for g in grids]
        seed_list = sw.parse_seeds(seeds) if seeds is not None else None
        which = sw.parse_shard(shard) if shard is not None else None
        if which is not None and out is None:
            raise sw.SweepError("--shard needs --out: every shard writes into the same sweep directory")
        if not dry_run and not kw["dataset"]:
            raise sw.SweepError("Missing option '--dataset' (every run needs one; --dry-run does not)")
        sw.check_count(list(specs), grid, seed_list)  # before any variant is enumerated, --dry-run included
        check_run_options(_run_options(dict(kw, dataset=kw["dataset"] or "", seed=None, out="runs"), sets, unsets))
        typed = [n for n in kw if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]
        sw.check_grid(grid, sets, typed + (["seeds"] if seed_list else []))
        if not dry_run and kw["dataset"] != "demo":  # every run would stop on a dataset it cannot index: say so
            from composer.data.datasets import load_dataset  # once, before any build (the demo is generated)

            load_dataset(kw["dataset"], kw["data_root"], kw["split"], kw["skip_missing"])
        tiny = kw["size"] == "tiny"
        variants = sw.plan(list(specs), grid, list(sets), list(unsets), tiny)
        jobs = sw.jobs(variants, seed_list)
        if dry_run:
            _dry_run(sw, variants, list(sets), list(unsets), tiny, kw)
            return
        folder = out or sw.default_dir(list(specs))
        identity = sw.identity(list(specs), grid, list(sets), list(unsets), seed_list, kw, jobs)
        sw.open_dir(folder, identity)
    except sw.SweepError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    mine = sw.shard(jobs, which)
    click.echo(f"sweep directory: {folder} ({len(jobs)} runs" + (f", {len(mine)} in shard {shard}" if which else "")
               + "; the same command with --out " + str(folder) + " resumes it)")
    made = sw.run_sweep(folder, identity, jobs, mine, list(sets), list(unsets), _passed_through(ctx), tiny,
                        seed_list is not None and len(seed_list) > 1, click.echo)
    click.echo((folder / "results.md").read_text(encoding="utf-8"), nl=False)
    click.echo(f"results: {folder / 'results.md'}, {folder / 'results.csv'}")
    sys.exit(1 if any(r["status"] == "failed" for r in made) else 0)


def _dry_run(sw, variants, sets, unsets, tiny: bool, kw: dict) -> None:
    """Print the cost table of every variant: parameters, GFLOPs, and the memory of one training step at the
    run's batch size (`--batch-size`, else the spec's) and precision (`--precision`, else the spec's)."""
    from rich.progress import track

    rows = []
    for variant in track(variants, description="building", transient=True, console=_console(stderr=True)):
        spec = sw.load_variant(variant, sets, unsets, tiny)
        precision = kw["precision"] or spec.train.precision
        if precision == "auto":
            import torch

            precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
        batch = spec.train.batch_size if kw["batch_size"] is None else kw["batch_size"]
        too_big = check_batch(spec, batch, "--batch-size")
        if too_big:
            raise DataError(too_big)
        rows.append(sw.measure(variant, sets, unsets, tiny, memory=(batch, precision)))
    click.echo(sw.cost_table(variants, rows), nl=False)
    click.echo("peak memory: one training step, every frozen block that can be recomputed recomputed (the least "
               "a run needs; `composer build SPEC --batch-size N` shows the plan a run chooses)")


def checkpoint_options(fn):
    """--checkpoint and the classes, as predict and export take them."""
    for option in reversed([
        click.option("--checkpoint", type=NonEmptyPath(), default=None,
                     help="a trainable-only checkpoint of a run of SPEC (a .safetensors file, a checkpoint directory "
                     "or a run's checkpoints folder); its class names, seed, size and weights are used. Required when "
                     "SPEC trains anything"),
        click.option("--classes", "class_names", default=None, metavar='"A,B,C"',
                     help="class names, comma-separated: any names for a text classifier (zero-shot); for a linear "
                     "head, as many as it was trained on (default: the checkpoint's)"),
        click.option("--classes-file", type=NonEmptyPath(dir_okay=False), default=None,
                     help="class names, one per line (instead of --classes)")]):
        fn = option(fn)
    return fn


def backbone_options(fn):
    """How the frozen backbones are rebuilt for a checkpoint: size, weights kind and seed (its own by default)."""
    for option in reversed([
        click.option("--size", type=click.Choice(["full", "tiny"]), default=None,
                     help="tiny: small random-weight backbones (default: the checkpoint's size, else full)"),
        click.option("--weights", type=click.Choice(["demo", "random"]), default=None,
                     help="tiny backbones: demo (pretrained, shipped) or random (default: the checkpoint's, else "
                     "random)"),
        click.option("--seed", type=SEED, default=None,
                     help="the seed tiny backbones are generated from (default: the checkpoint's, else the spec's)")]):
        fn = option(fn)
    return fn


def _views(ctx, param, value):
    from composer.train.predict import parse_views

    try:
        return None if value is None else parse_views(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@main.command(name="eval")
@click.argument("spec", metavar="SPEC")
@spec_options
@data_options
@click.option("--checkpoint", required=True, type=NonEmptyPath(exists=True),
              help="a checkpoint of a run of SPEC: a trainable-only file (e.g. runs/.../checkpoints/best.safetensors), "
              "a checkpoint directory (runs/.../checkpoints/step-N) or a run's checkpoints folder (its latest); "
              "verified first; its seed and size are used")
@click.option("--protocol", type=click.Choice(["supervised", "few-shot", "base-to-novel", "zero-shot"]),
              default="supervised", show_default=True)
@click.option("--shots", type=COUNT, default=None, help="K videos per class (few-shot)")
@click.option("--eval-dataset", default=None, help="the dataset whose classes are tested (zero-shot)")
@click.option("--eval-root", type=NonEmptyPath(), default=None, help="its data root")
@click.option("--views", default=None, metavar="CxK", callback=_views,
              help="C clips along time x K crops (1 or 3) per video (default: the spec's train.views)")
@backbone_options
@click.option("--batch-size", type=COUNT, default=None,
              help="clips per forward pass, test views included (default: the spec's train.batch_size)")
@click.option("--workers", type=WORKERS, default=min(4, os.cpu_count() or 1), show_default=True,
              help="DataLoader worker processes")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: the GPU when there is one)")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), default=None,
              help="default: the spec's (auto: bf16 where the GPU supports it, else fp32)")
@click.option("--gpu-decode", is_flag=True, help="decode videos on the GPU with torchcodec (NVDEC)")
@click.option("--out", type=NonEmptyPath(file_okay=False), default=None,
              help="where the eval directory goes (default: evals/ in the checkpoint's run directory, else "
              "./evals)")
@_fail_on_spec_errors
def evaluate_command(spec, sets, unsets, checkpoint, **kw):
    """Evaluate SPEC with a checkpoint on a dataset's test split (multi-view, as in the spec's train.views).

    \b
    composer eval SPEC --checkpoint runs/RUN/checkpoints/best.safetensors --dataset ucf101 --data-root /data/ucf101

    Writes OUT/<spec>-<time>/summary.json (spec, checkpoint and its SHA-256, dataset, protocol, views, seed,
    size, metrics, per-class accuracy, every video's top-5) and prints the metrics and the directory.
    Test videos that cannot be decoded are scored as wrong (the "failed" column)."""
    from composer.train.evaluate import EvalOptions, evaluate_checkpoint, metrics_table

    options = EvalOptions(sets=list(sets), unsets=list(unsets), **kw)
    summary, folder = evaluate_checkpoint(spec, checkpoint, options)
    _console().print(metrics_table(summary))
    if summary["bad_videos"]:
        _console().print(f"{len(summary['bad_videos'])} test video(s) could not be decoded and were scored as wrong; "
                        f"listed in {folder / 'summary.json'}")
    _console().print(f"eval directory: {folder}", highlight=False, soft_wrap=True)


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=NonEmptyPath(path_type=Path))
@click.option("-o", "--output", type=NonEmptyPath(dir_okay=False, path_type=Path), default=None,
              help="write one figure with the learning curves of every RUN_DIR overlaid to this file (.png, .svg "
              "or .pdf); default with several runs: overlay.png in the current folder")
@_fail_on_spec_errors
def plot(run_dirs, output):
    """Draw the pictures of runs from their metrics.jsonl and confusion.json.

    \b
    composer plot runs/tds-clip-20261122-101500             redraw learning-curves.png and
                                                           confusion-<part>.png in the run directory
    composer plot runs/a runs/b -o compare.png              both runs' curves in one figure

    Curves: training loss per epoch and single-view test top-1 per evaluated epoch, on one epoch
    axis across stages (boundaries dotted). Confusion matrices: multi-view test, normalised per true class."""
    from composer.viz import plots

    for run_dir in run_dirs:
        plots.check_run_dir(run_dir)
    if len(run_dirs) == 1 and output is None:
        run_dir = Path(run_dirs[0])  # a zero-shot run has only its confusion matrices; a run with neither is refused
        curves = plots.has_curves(run_dir) or not (run_dir / "confusion.json").exists()
        for path in plots.draw_run(run_dir, learning_curves=curves):
            click.echo(str(path))
        return
    drawn = [d for d in run_dirs if plots.has_curves(d)]
    for run_dir in run_dirs:  # a zero-shot run trained nothing: it has no curves to overlay
        if run_dir not in drawn:
            click.echo(f"note: {run_dir} has no learning curves (it trained no epoch, e.g. a zero-shot run); "
                       "left out of the overlay", err=True)
    if not drawn:
        raise DataError("none of the runs trained an epoch: there are no learning curves to overlay")
    target = Path("overlay.png") if output is None else output
    _written(target, lambda: click.echo(str(plots.overlay(drawn, target))))


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=NonEmptyPath(path_type=Path))
@click.option("--stdout", "to_stdout", is_flag=True, help="print the card instead of writing RUN_DIR/README.md")
@_fail_on_spec_errors
def card(run_dirs, to_stdout):
    """Write the model card of runs: RUN_DIR/README.md, in the layout of a Hugging Face model card.

    \b
    composer card runs/tds-clip-20261122-101500

    `composer run` writes the card itself (at the start, after every epoch and at the end); this writes it
    again from the directory's files, e.g. for a run made before cards existed. The card holds the
    results (a model-index in the front matter, the confusion and learning-curve pictures), the
    backbones and their weights, what trains and where it attaches, parameters and GFLOPs per clip, the
    data and protocol, the command that recreates the run and the checkpoints' SHA-256. A run without
    test metrics says it is not trained yet or was interrupted."""
    from composer.train.card import model_card, write_card

    for run_dir in run_dirs:
        if to_stdout:
            click.echo(model_card(run_dir), nl=False)
        else:
            click.echo(str(write_card(run_dir)))


@main.command()
@click.argument("spec", metavar="SPEC")
@click.argument("paths", nargs=-1, required=True, metavar="VIDEO_OR_FOLDER...", type=NonEmptyPath())
@spec_options
@checkpoint_options
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="classes shown per video  [default: 5, or all when there are fewer]")
@click.option("--views", default=None, metavar="CxK", callback=_views,
              help="C clips along time x K crops (1 or 3) per video, softmax scores averaged (default: the "
              "spec's train.views, as in `composer eval`)")
@backbone_options
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: the GPU when there is one)")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), default=None,
              help="default: the spec's (auto: bf16 where the GPU supports it, else fp32)")
@click.option("--batch-size", type=COUNT, default=None,
              help="videos per forward pass (default: the spec's train.batch_size)")
@click.option("--workers", type=WORKERS, default=min(4, os.cpu_count() or 1), show_default=True,
              help="processes decoding videos")
@click.option("--json", "as_json", is_flag=True, help="print JSON lines: one object per input, "
              '{"path", "top_k": [{"class", "probability"}]} or {"path", "error"}')
@_fail_on_spec_errors
def predict(spec, paths, sets, unsets, checkpoint, class_names, classes_file, top_k, views, size, seed, weights,
            device, precision, batch_size, workers, as_json):
    """Classify videos: the top-k classes of each with their probabilities.

    \b
    composer predict specs/baselines/clip-zero-shot.yaml clip.mp4 --classes "archery,juggling,surfing"
    composer predict SPEC videos/ --checkpoint runs/.../checkpoints/best.safetensors --json

    A folder stands for every video file inside it (recursively, sorted). Videos are decoded, sampled
    and averaged over views exactly as `composer eval` does. A spec whose classifier is text (CLIP,
    ViCLIP, MSTA, temporal prompts) scores any class names; a linear head scores the classes of its
    checkpoint. A spec with trainable parts needs --checkpoint.

    Exit status: 0 when every video was classified; 2 when any input failed (a missing path, a folder
    without videos, a file that cannot be decoded: each is reported and the others still are
    classified) or for a mistake in the arguments."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Column, Table
    from rich.text import Text

    from composer.train.predict import PredictOptions, Predictor, find_videos, read_classes

    options = PredictOptions(checkpoint=checkpoint, classes=read_classes(class_names, classes_file), top_k=top_k,
                             views=views, size=size, seed=seed, weights=weights, device=device, precision=precision,
                             batch_size=batch_size, workers=workers, sets=list(sets), unsets=list(unsets))
    videos, failed = find_videos(list(paths))
    predictor = Predictor(spec, options)
    err = _console(stderr=True)
    for note in predictor.notes:
        err.print(f"note: {note}", highlight=False)
    results = list(failed)
    if as_json:
        for r in failed:
            click.echo(json.dumps(r.to_json(), ensure_ascii=False))
    with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=len(videos) < 2) as progress:
        task = progress.add_task("videos", total=len(videos))
        for r in predictor.predict(videos) if videos else []:
            results.append(r)
            progress.advance(task)
            if as_json:
                click.echo(json.dumps(r.to_json(), ensure_ascii=False))
    bad = [r for r in results if r.error is not None]
    ties = predictor.ties()
    if ties:
        err.print(f"warning: {ties}", highlight=False, soft_wrap=True)
    if not as_json:
        table = Table(Column("video", overflow="fold"), "class", Column("probability", justify="right"), title=f"top {predictor.top_k} of {len(predictor.classes)} "
                      f"classes, {predictor.clip.clips} clip(s) x {predictor.clip.crops} crop(s)",
                      title_justify="left")
        for r in results:  # Text cells: a path or class name with [brackets] is not rich markup
            if r.error is not None:
                table.add_row(Text(r.path), Text(f"error: {r.error}", style="red"), "", end_section=True)
            for rank, (name, p) in enumerate(r.top):
                table.add_row(Text(r.path if rank == 0 else ""), Text(name), f"{p:.4f}",
                              end_section=rank == len(r.top) - 1)
        _console().print(table)
    for r in bad:
        err.print(f"error: {r.path}: {r.error}", highlight=False, soft_wrap=True)
    sys.exit(2 if bad else 0)


@main.command(name="export")
@click.argument("spec", metavar="SPEC")
@spec_options
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript", "exported-program"]), required=True,
              help="onnx (torch.onnx dynamo exporter, model.onnx), torchscript (torch.jit.trace, model.pt) or "
              "exported-program (torch.export, model.pt2)")
@checkpoint_options
@click.option("--out", type=NonEmptyPath(file_okay=False), required=True,
              help="folder to write the model file, classes.txt and export.json into")
@click.option("--tolerance", type=Finite(min=0), default=1e-4, show_default=True,
              help="the largest absolute difference from the composed model accepted on the sample clips")
@click.option("--input", "input_dtype", type=click.Choice(["float32", "uint8"]), default="float32",
              show_default=True, help="what the exported model takes: float32 pixels in [0, 1] or uint8 pixels "
              "(divided by 255 inside)")
@backbone_options
@_fail_on_spec_errors
def export(spec, sets, unsets, fmt, checkpoint, class_names, classes_file, out, tolerance, input_dtype, size,
           weights, seed):
    """Export a spec as one inference file: video clips in, class scores out.

    \b
    composer export SPEC --checkpoint runs/.../checkpoints/best.safetensors --format onnx --out deploy/
    composer export clip-zero-shot --format onnx --classes "archery,juggling,surfing" --out zs/

    The exported model takes clips [B, T, 3, H, W] (float in [0, 1], or uint8 with --input uint8) and
    returns [B, C] class scores; each backbone normalises inside. Class-name embeddings are computed
    once and frozen in (no text tower, no tokenizer), LoRA/DoRA are merged into the backbone weights
    with peft, and losses and everything only they use are left out. The file is run back on sample
    clips and compared with the composed model (docs/export.md).

    Exit status: 0 when the file matches within --tolerance; 1 when it does not (the difference is
    printed; the files stay for inspection); 2 for a spec or part that cannot be exported, or a mistake
    in the arguments."""
    from composer.train.deploy import ExportOptions, export_spec
    from composer.train.predict import read_classes

    options = ExportOptions(format=fmt, out=Path(out), checkpoint=checkpoint,
                            classes=read_classes(class_names, classes_file), tolerance=tolerance,
                            uint8=input_dtype == "uint8", size=size, seed=seed, weights=weights, sets=list(sets),
                            unsets=list(unsets))
    result = export_spec(spec, options)
    r = result.record
    click.echo(f"wrote {result.path} ({r['format']}, {r['classes']} classes, input {r['input']['dtype']}"
               f"[{', '.join(map(str, r['input']['shape']))}]); classes.txt and export.json beside it")
    click.echo(f"max |difference| from the composed model: {r['max_abs_difference']:.3g} "
               f"(tolerance {r['tolerance']:.3g})")
    if not result.within_tolerance:
        click.echo(f"error: the exported model differs from the composed model by {r['max_abs_difference']:.3g}, "
                   f"more than --tolerance {r['tolerance']:.3g}; do not use {result.path}", err=True)
        sys.exit(1)


@main.group()
def data() -> None:
    """Inspect and prepare datasets before a long run."""


@data.command(name="check")
@data_options
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="flag videos with fewer frames than this (the T a spec samples)")
@click.option("--spec", "spec_path", default=None, metavar="SPEC",
              help="take --frames from this spec's video input (with --set applied)")
@spec_options
@click.option("--decode/--no-decode", default=True, show_default=True,
              help="decode the first, middle and last frame of every video (--no-decode: only open them, "
              "as `composer run` does before training)")
@_fail_on_spec_errors
def data_check(dataset, data_root, split, skip_missing, short_videos, frames, spec_path, sets, unsets, decode):
    """Parse a dataset's split files and look at every video; list what is wrong.

    \b
    composer data check --dataset list --data-root /data/mine --spec specs/papers/tds-clip.yaml

    Reports, in file order and once each, what `composer run` reports on the same dataset (it goes through
    the same code): index problems (file:line: reason), videos that cannot be decoded, and videos shorter
    than the frames sampled (with --frames or --spec). Exit status 0 when nothing is wrong, 1 when
    something is, 2 for a mistake in the arguments."""
    from rich.progress import Progress

    from composer.data.check import check_dataset

    if spec_path is not None:
        video = _load(spec_path, sets, unsets).video_input()
        if video is None:
            raise DataError(f"{spec_path} has no video input to take the frame count from; give --frames N")
        if frames is not None and frames != video.frames:
            raise DataError(f"--frames {frames} contradicts {spec_path}, which samples {video.frames}; give one")
        frames = video.frames
    with Progress(console=_console(stderr=True), transient=True) as bars:
        def advance_factory(total: int):
            task = bars.add_task("checking videos", total=total)
            return lambda: bars.advance(task)

        report = check_dataset(dataset, data_root, split, decode, frames, short_videos, advance_factory,
                               workers=min(4, os.cpu_count() or 1), say=lambda line: click.echo(line, err=True))
    if frames is None:
        report_note = "(short videos not checked: give --frames N or --spec SPEC)"
        click.echo(report.text() + "\n" + report_note)
    else:
        click.echo(report.text())
    sys.exit(0 if report.ok else 1)


@data.command(name="prepare")
@click.option("--data-root", type=NonEmptyPath(), required=True, help="the folder that holds the dataset")
@click.option("--out", type=NonEmptyPath(file_okay=False), required=True,
              help="the folder of the copy (created; point --data-root at it afterwards)")
@click.option("--short-side", type=click.IntRange(min=16), default=256, show_default=True,
              help="shorter side in pixels (256 or 320 as most papers read; smaller videos are not upscaled)")
@click.option("--keyframe-every", type=click.IntRange(min=1), default=8, show_default=True,
              help="frames between keyframes: a sampled frame costs at most this many decoded frames")
@click.option("--fps", type=Finite(min=0, min_open=True), default=None,
              help="constant frame rate of the copy (default: the source's)")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="libx264 quality: lower is closer to the source and larger")
@click.option("--preset", default="fast", show_default=True,
              type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]))
@click.option("--jobs", type=WORKERS, default=0, help="videos transcoded at once (default: one per "
              "core; FFmpeg's threads share the cores)")
@click.option("--dataset", default=None, help="also check that the copy indexes like the source with this "
              "dataset's parser (same videos, labels and classes)")
@click.option("--split", type=int, default=1, show_default=True, help="the split checked with --dataset")
@_fail_on_spec_errors
def data_prepare(data_root, out, short_side, keyframe_every, fps, crf, preset, jobs, dataset, split):
    """Transcode a dataset once into a seek-friendly copy: shorter side 256 (or 320), a keyframe every few
    frames, constant frame rate, H.264 through FFmpeg, no audio.

    \b
    composer data prepare --data-root /data/ucf101 --out /fast/ucf101-256
    composer run SPEC --dataset ucf101 --data-root /fast/ucf101-256

    Every video keeps its relative path and name and every other file (split lists, CSV, JSON) is copied as
    it is, so the dataset's parser reads the copy like the original. Runs across the cores; run it again to
    resume (finished videos are skipped; it refuses other settings on the same --out). A video FFmpeg cannot
    decode is reported (one line each, and in OUT/.composer-prepare/failures.txt) and left out; the rest
    completes. A file with a video's name in the copy is always complete. Exit status 0: all prepared;
    1: failures listed; 2: a mistake in the arguments (e.g. an --out that cannot be written)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from composer.data.datasets import load_dataset
    from composer.data.prepare import PrepareOptions, prepare_dataset

    if dataset is not None:
        load_dataset(dataset, data_root, split, skip_missing=True, strict=False)  # a wrong root stops here
    options = PrepareOptions(short_side=short_side, keyframe_every=keyframe_every, fps=fps, crf=crf,
                             preset=preset, jobs=jobs)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as bars:
        def advance_factory(total: int):
            task = bars.add_task("transcoding videos", total=total)
            return lambda: bars.advance(task)

        report = prepare_dataset(data_root, out, options, advance_factory)
    click.echo(report.text())
    same = True
    if dataset is not None and not report.stop:
        from composer.data.prepare import compare_indexes

        differences = compare_indexes(dataset, data_root, out, split)
        same = not differences
        click.echo(f"the copy indexes like the source with the {dataset} parser" if same else
                   f"the copy does not index like the source ({dataset} parser):\n  " + "\n  ".join(differences))
    sys.exit(0 if report.ok and same else 1)


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("-o", "--output", type=NonEmptyPath(dir_okay=False), default=None,
              help="a Markdown file whose table (between its report markers) is rewritten, or created; "
              "e.g. -o docs/reproduction.md (default: print the table only)")
@_fail_on_spec_errors
def report(specs, output):
    """Count trainable and total parameters and GFLOPs per clip of each SPEC at full size (meta device),
    compare with the figures its paper reports (the spec's `reported`), and print the table; with -o,
    also write it into that file."""
    from rich.progress import track

    from composer.build import report as rep

    rows = [rep.measure(path) for path in track(specs, description="measuring", transient=True)]
    if output is None:
        click.echo(rep.table(rows), nl=False)
        return
    _written(output, lambda: click.echo(rep.write(rows, output), nl=False))
    click.echo(f"written to {output}", err=True)


@main.command()
@click.option("--markdown", is_flag=True, help="write the component catalogue (docs/components.md)")
def kinds(markdown):
    """List the component kinds of the registry, with their parameters."""
    from composer.components.catalogue import catalogue_markdown, kinds_table

    if markdown:
        click.echo(catalogue_markdown(), nl=False)
    else:
        _console().print(kinds_table())


@main.command(name="check-kind")
@click.argument("name")
@click.option("--params", default="", metavar="TEXT", help='its parameters in the text syntax, e.g. "dim=4"')
@click.option("--family", "families", multiple=True, help="only this backbone family (repeatable; default: all)")
@_fail_on_spec_errors
def check_kind(name, params, families):
    """Run on kind NAME (a plugin's too) the attachment contract composer's own kinds pass (composer/testing.py);
    exit status 1 when it breaks it."""
    from composer.testing import check_kind as contract, report_text

    report = contract(name, params, families or None)
    click.echo(report_text(report))
    sys.exit(1 if report.failures else 0)


@main.command(name="specs")
@click.option("--json", "as_json", is_flag=True, help="print one JSON list instead of the table")
@_fail_on_spec_errors
def specs_command(as_json):
    """List the specs shipped with composer: name, paper, backbones and trainable parameters (built at
    full size on the meta device, as `composer build` does; a few seconds).

    A name works wherever a spec path does: `composer build msta`, `composer run tds-clip ...`, and in
    `extends:`. A file that exists wins over a name. Where a name has both syntaxes (x.yaml and x.comp),
    the name means the YAML file."""
    from composer.build.shipped_list import spec_rows, specs_text

    rows = spec_rows()
    click.echo(json.dumps(rows, indent=2) if as_json else specs_text(rows), nl=not as_json)


# ---------------------------------------------------------------- editor support (composer/editor, docs/editors.md)
@main.command()
@click.option("-o", "--output", type=NonEmptyPath(dir_okay=False), help="write to a file instead of stdout")
@_fail_on_spec_errors
def schema(output):
    """Write the JSON Schema (draft 2020-12) of a YAML spec, from the IR and the registries, for editors.
    composer/editor/spec.schema.json in the package is this schema (docs/editors.md)."""
    from composer.editor.schema import dumps, generate

    text = dumps(generate())
    if output:
        _written(output, lambda: Path(output).write_text(text, encoding="utf-8"))
    else:
        click.echo(text, nl=False)


@main.command()
def lsp():
    """Run the language server for specs (YAML and .comp) on standard input and output, for an editor:
    composer's own errors as you type, completion, hover, go to definition (docs/editors.md)."""
    from composer.editor.server import serve

    serve()


if __name__ == "__main__":
    main()
