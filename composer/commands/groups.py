"""Every option that more than one command takes, declared once (its flags, type, default and help), and the
groups commands take them in: spec, data, protocol, backbone and size, compute and precision, memory,
checkpoint, training and tracking. A command that means something narrower by an option says so with
`.but(help=...)`; the type stays the declared one (tests/test_cli_options.py compares them across commands)."""

from __future__ import annotations

import os

import click

from composer.commands.common import COUNT, SEED, WORKERS, Finite, NonEmptyPath
from composer.commands.options import Group, Option

DATASETS = "ucf101, hmdb51, kinetics400, kinetics600, ssv2, diving48, folder, list, or demo (generated offline)"
PRECISIONS = ["auto", "bf16", "fp16", "fp32"]

SPEC = Group("spec", (
    Option(("--set", "sets"), dict(multiple=True, metavar="PATH=VALUE",
           help="override a field, e.g. --set components.adapter.params.dim=128 (repeatable)"),
           value=lambda p: list(p["sets"])),
    Option(("--unset", "unsets"), dict(multiple=True, metavar="PATH", help="remove a key, e.g. --unset "
           "components.adapter"), value=lambda p: list(p["unsets"])),
))

DATA = Group("data", (
    Option(("--dataset",), dict(required=True, help=DATASETS), value=lambda p: p["dataset"] or ""),
    Option(("--data-root",), dict(type=NonEmptyPath(), default=None, help="the folder that holds the dataset")),
    Option(("--split",), dict(type=int, default=1, show_default=True, help="official split (UCF101, HMDB51)")),
    Option(("--skip-missing",), dict(is_flag=True, help="skip (and list) videos the split files name but that "
           "are missing, instead of stopping")),
    Option(("--short-videos",), dict(type=click.Choice(["loop", "skip"]), default="loop", show_default=True,
           help="videos with fewer frames than the spec samples: loop repeats their frames (0 1 2 0 1 2, as "
           "MMAction2 does); skip leaves them out of training and scores them as wrong in testing")),
))


def data(required: bool = True, unless: str = "--resume") -> Group:
    """The data options; `required=False`: --dataset may be left out when `unless` is given."""
    return DATA if required else DATA.but("--dataset", required=False, help=f"{DATASETS}; required unless {unless}")


PROTOCOL = Group("protocol", (
    Option(("--protocol",), dict(type=click.Choice(["supervised", "few-shot", "base-to-novel", "zero-shot"]),
           default="supervised", show_default=True)),
    Option(("--shots",), dict(type=COUNT, default=None, help="K videos per class (few-shot)")),
    Option(("--eval-dataset",), dict(default=None, help="the dataset whose classes are tested (zero-shot)")),
    Option(("--eval-root",), dict(type=NonEmptyPath(), default=None, help="its data root")),
))

# backbone and size: how the frozen backbones are built; as declared, for rebuilding a checkpoint's
BACKBONE = Group("backbone", (
    Option(("--size",), dict(type=click.Choice(["full", "tiny"]), default=None,
           help="tiny: small random-weight backbones (default: the checkpoint's size, else full)")),
    Option(("--weights",), dict(type=click.Choice(["demo", "random"]), default=None,
           help="tiny backbones: demo (pretrained, shipped) or random (default: the checkpoint's, else random)")),
    Option(("--seed",), dict(type=SEED, default=None,
           help="the seed tiny backbones are generated from (default: the checkpoint's, else the spec's)")),
))
# a new run: full size unless asked, and RunOptions records tiny as a flag
RUN_BACKBONE = BACKBONE.but(
    "--size", default="full", show_default=True, to="tiny", value=lambda p: p["size"] == "tiny",
    help="tiny: small random-weight backbones and 64 px clips (offline, CPU)").but(
    "--weights", help="with --size tiny: demo loads the tiny backbones pretrained on captioned synthetic motion "
    "that ship with composer (docs/demo-weights.md); random (the default at tiny size) draws them from the "
    "seed").but("--seed", help=None)

COMPUTE = Group("compute", (
    Option(("--batch-size",), dict(type=COUNT, default=None,
           help="clips per forward pass, test views included (default: the spec's train.batch_size)")),
    Option(("--workers",), dict(type=WORKERS, default=min(4, os.cpu_count() or 1), show_default=True,
           help="DataLoader worker processes")),
    Option(("--device",), dict(default=None, help="cpu, cuda, cuda:1 (default: the GPU when there is one)")),
    Option(("--precision",), dict(type=click.Choice(PRECISIONS), default=None,
           help="default: the spec's (auto: bf16 where the GPU supports it, else fp32)")),
    Option(("--gpu-decode",), dict(is_flag=True, help="decode videos on the GPU with torchcodec (NVDEC)")),
))
RUN_COMPUTE = COMPUTE.but(
    "--batch-size", help="the global batch of one optimiser step, split evenly across processes (default: the "
    "spec's train.batch_size)").but(
    "--device", help="cpu, cuda, cuda:1 (default: the GPU when there is one; under torchrun or accelerate launch "
    "each process uses the GPU of its local rank)").but(
    "--gpu-decode", help="decode videos on the GPU with torchcodec (NVDEC); loads in the main process")

MEMORY = Group("memory", (
    Option(("--no-plan",), dict(is_flag=True, help="autograd everywhere, no caching, no recomputation"),
           to="plan", value=lambda p: not p["no_plan"]),
    Option(("--recompute",), dict(type=click.Choice(["auto", "all", "none"]), default="auto", show_default=True,
           help="which frozen blocks are recomputed in the backward pass instead of stored: auto only what does "
           "not fit the device's memory at the per-process batch (the fastest plan that fits); all and none for "
           "comparison"), value=lambda p: "none" if p["no_recompute"] else p["recompute"],
           reads=("recompute", "no_recompute")),
    Option(("--no-recompute",), dict(is_flag=True, help="the same as --recompute none"), to=""),
    Option(("--cache-features",), dict(type=NonEmptyPath(file_okay=False), default=None,
           help="when the video only goes through frozen towers: compute their outputs for un-augmented training "
           "clips once, keep them in this folder, and train on them")),
    Option(("--compile", "compile_"), dict(is_flag=True, help="torch.compile the model (falls back to eager with "
           "a message if compiling fails)"), to="compile"),
))

# the memory bill of one training step (composer build, composer diff)
BILL = Group("bill", (
    COMPUTE.options[0].but(help="print the memory bill of a training step at this batch size (default with "
                           "--memory-budget: the spec's train.batch_size)"),
    COMPUTE.options[3].but(help="the training precision the bill assumes (default: the spec's train.precision; "
                           "auto is bf16 on a GPU that supports it, else fp32)"),
    Option(("--memory-budget",), dict(default=None, metavar="SIZE",
           help="memory to fit, e.g. 24GiB, 80G, 500MiB (default: 90%% of this GPU's free memory, else the "
           "available RAM); the bill then gives the largest batch size that fits")),
))

def _views(ctx, param, value):
    from composer.deploy.predict import parse_views  # torch: only when --views is given

    try:
        return None if value is None else parse_views(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


VIEWS = Option(("--views",), dict(default=None, metavar="CxK", callback=_views,
               help="C clips along time x K crops (1 or 3) per video (default: the spec's train.views)"))

CHECKPOINT = Group("checkpoint", (
    Option(("--checkpoint",), dict(type=NonEmptyPath(), default=None,
           help="a trainable-only checkpoint of a run of SPEC (a .safetensors file, a checkpoint directory or a "
           "run's checkpoints folder); its class names, seed, size and weights are used. Required when SPEC "
           "trains anything")),
    Option(("--classes", "class_names"), dict(default=None, metavar='"A,B,C"',
           help="class names, comma-separated: any names for a text classifier (zero-shot); for a linear head, as "
           "many as it was trained on (default: the checkpoint's)"), to=""),
    Option(("--classes-file",), dict(type=NonEmptyPath(dir_okay=False), default=None,
           help="class names, one per line (instead of --classes)"), to=""),
))
OUT = Option(("--out",), dict(type=NonEmptyPath(file_okay=False), default="runs", show_default=True,
             help="where run directories go"))
OUTPUT = Option(("-o", "--output"), dict(type=NonEmptyPath(dir_okay=False), help="write to a file instead of "
                "stdout"))
JSON = Option(("--json", "as_json"), dict(is_flag=True, help="print one JSON object instead of tables"))
NO_FLOPS = Option(("--no-flops",), dict(is_flag=True, help="skip counting FLOPs"))
FORMAT = Option(("--format", "fmt"), dict(type=click.Choice(["dot", "mermaid", "json", "svg", "png"]),
                default="mermaid", show_default=True, help="svg and png need Graphviz's dot program"))
EVERY = click.IntRange(min=1)  # every N steps or epochs

TRAINING = Group("training", (
    Option(("--epochs",), dict(type=COUNT, default=None, help="override the spec's epochs (every stage)")),
    Option(("--eval-batch-size",), dict(type=COUNT, default=None, help="clips per evaluation forward on each "
           "process, test views included (default: the per-process training batch)")),
    Option(("--lr",), dict(type=Finite(min=0, min_open=True), default=None,
           help="override the spec's learning rate (every stage; train.groups' own rates stay)")),
    OUT,
    Option(("--max-steps",), dict(type=COUNT, default=None, help="stop each epoch after this many steps")),
    Option(("--eval-every",), dict(type=EVERY, default=1, show_default=True,
           help="test (single view) after every N epochs, and after the last")),
))

TRACKING = Group("tracking", (
    Option(("--save-every",), dict(type=EVERY, default=None,
           help="also save the state to resume from every N optimiser steps (default: at epoch ends only)")),
    Option(("--progress-every",), dict(type=EVERY, default=None,
           help="when the output is not a terminal (and in run.log): one progress line per N steps (default: "
           "every tenth of an epoch)")),
    Option(("--fsdp",), dict(is_flag=True, help="shard a full fine-tune across GPUs (FSDP through Accelerate; "
           "several processes on CUDA only)")),
    Option(("--log-with", "log_with"), dict(multiple=True, metavar="TRACKER", help="tensorboard, mlflow, wandb, "
           "... or none (repeatable; default: TensorBoard when installed)"), value=lambda p: list(p["log_with"])),
    Option(("--tracking-uri",), dict(default=None, help="MLflow's tracking URI (default: a SQLite store in the "
           "run directory)")),
))

# what `composer run` and each run of `composer sweep` take (a sweep has its own --out and --seeds)
RUN = (data(required=False), PROTOCOL, RUN_BACKBONE, TRAINING, RUN_COMPUTE, MEMORY, TRACKING)
