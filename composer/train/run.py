"""`composer run` and `composer eval`: a spec, a dataset and a protocol in; a run directory out.

runs/<spec>-<time>/
    spec.yaml         the spec as it ran (inheritance and --set applied)
    run.json          options, dataset, protocol, versions
    metrics.jsonl     one line per epoch: stage, loss, lr, throughput, single-view test metrics
    checkpoints/      last.safetensors (+ resume.*) after every epoch, best.safetensors
    summary.json      final multi-view metrics per test part, bad videos
    per_class.json    per-class accuracy
Only rank 0 writes. Everything else (which stage and epoch come next, optimiser state, generators)
is in the checkpoints folder, so `--resume` continues exactly where an interrupted run stopped.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from composer.build.checkpoint import atomic_write, load_trainable, save_trainable
from composer.build.compile import BuildOptions, compile_spec
from composer.data.clips import ClipConfig, ClipDataset
from composer.data.datasets import load_dataset
from composer.data.protocols import Task, harmonic_mean, make_task
from composer.errors import DataError, SpecError
from composer.spec.ir import VideoInput
from composer.spec.load import load_spec
from composer.spec.printer import to_yaml
from composer.train import distributed
from composer.train.loop import LossNotFinite, Settings, evaluate, resolve_precision, train_epoch
from composer.train.optim import make_optimizer, make_schedule
from composer.train.state import load_state, save_state

TINY_SIZE = 64


@dataclass
class RunOptions:
    dataset: str
    data_root: str | None = None
    split: int = 1
    protocol: str = "supervised"
    shots: int | None = None
    eval_dataset: str | None = None
    eval_root: str | None = None
    tiny: bool = False
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    workers: int = 2
    device: str | None = None
    precision: str | None = None
    seed: int | None = None
    out: str = "runs"
    skip_missing: bool = False
    max_steps: int | None = None
    eval_every: int = 1
    gpu_decode: bool = False  # decode with NVDEC on the run's GPU (in the main process)
    plan: bool = True
    recompute: bool = True
    cache_features: str | None = None  # folder for frozen features of un-augmented training clips
    compile: bool = False  # torch.compile the model (falls back to eager with a message)
    sets: list[str] = field(default_factory=list)
    unsets: list[str] = field(default_factory=list)


def _device(requested: str | None, world: distributed.World) -> str:
    if requested:
        return requested
    if torch.cuda.is_available():
        return f"cuda:{world.local_rank}"
    return "cpu"


def _video(spec) -> VideoInput:
    video = next((i for i in spec.inputs.values() if isinstance(i, VideoInput)), None)
    if video is None:
        raise SpecError("the spec has no video input to train on")
    return video


def _check_heads(model, task: Task) -> None:
    """A fixed-size classifier cannot score classes it was not trained on (base-to-novel, zero-shot)."""
    import networkx as nx

    upstream = nx.ancestors(model.graph.g, f"t:{model.graph.predict}")
    fixed = [c.component for c in model.graph.calls.values() if c.kind.name == "linear_head" and f"c:{c.out}" in upstream]
    for name, part in task.tests.items():
        if fixed and part.classes != task.train.classes:
            raise DataError(f"the {task.protocol} protocol tests '{name}' on classes the model never trained on, "
                            f"but {fixed[0]} (linear_head) has one output per training class; use a spec that scores "
                            "classes by their names (a text tower and cosine_logits)")


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise DataError(f"cannot write the run directory {folder}: {e.strerror or e}") from None


def _new_run_dir(out: str, name: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(out) / f"{name}-{stamp}"
    n = 2
    while folder.exists():
        folder = Path(out) / f"{name}-{stamp}-{n}"
        n += 1
    return folder


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} clips/s"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, ensure_ascii=False)))


def _stages(spec) -> list[tuple[str, Any]]:
    return list(spec.stages.items()) if spec.stages else [("train", None)]


class Run:
    """One training run (or a resumed one)."""

    def __init__(self, spec_path: str | None, options: RunOptions, resume: Path | None = None,
                 console: Console | None = None) -> None:
        self.options, self.resume = options, resume
        self.world = distributed.setup(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.console = console or Console(stderr=True, quiet=not self.world.main)
        sets = list(options.sets)
        if options.tiny and not any(s.startswith("inputs.video.size=") for s in sets):
            sets.append(f"inputs.video.size={TINY_SIZE}")
        self.spec = load_spec(resume / "spec.yaml" if resume else spec_path, sets if not resume else (),
                              options.unsets if not resume else ())
        train = self.spec.train
        self.seed = options.seed if options.seed is not None else train.seed
        self.device = _device(options.device, self.world)
        decode = self.device if options.gpu_decode and self.device.startswith("cuda") else "cpu"
        self.settings = Settings(device=self.device, precision=resolve_precision(options.precision or train.precision,
                                                                                 self.device),
                                 batch_size=options.batch_size or train.batch_size,
                                 workers=0 if decode != "cpu" else options.workers,  # CUDA cannot start in workers
                                 accumulate=train.accumulate, grad_clip=train.grad_clip, max_steps=options.max_steps)
        if self.device == "cpu" and self.settings.precision != "fp32":
            self.console.print(f"[yellow]warning:[/] {self.settings.precision} autocast on the CPU: most CPUs emulate "
                               "half-precision matmuls (a training step measured 43x slower than fp32 in "
                               "benchmarks/RESULTS.md); --precision fp32 is the fast choice here")
        index = load_dataset(options.dataset, options.data_root, options.split, options.skip_missing)
        target = load_dataset(options.eval_dataset, options.eval_root, options.split, options.skip_missing) \
            if options.eval_dataset else None
        self.index = index
        self.task = make_task(options.protocol, index, options.shots, self.seed, target)
        torch.manual_seed(self.seed)
        self.model = compile_spec(self.spec, BuildOptions(device=self.device, tiny=options.tiny,
                                                          load_weights=not options.tiny, plan=options.plan,
                                                          recompute=options.recompute,
                                                          num_classes=len(self.task.train.classes)))
        if self.model.graph.predict is None:
            raise SpecError("the spec has no prediction to evaluate: name its [B, C] scores in `predict`")
        self.model.use_dataset_files({**index.files, **(target.files if target else {})})
        _check_heads(self.model, self.task)
        self.dir = resume or _new_run_dir(options.out, self.spec.name)
        if self.world.main:
            _writable(self.dir)
        video = _video(self.spec)
        views = self.spec.train.views
        self.clip = ClipConfig(video.frames, video.size, video.window, flip=index.flip, device=decode)
        self.test_clip = ClipConfig(video.frames, video.size, video.window, views.clips, views.crops, flip=False,
                                    device=decode)
        self.scores: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # test part -> (scores, labels)

    # -- files
    def _record_start(self) -> None:
        if not self.world.main or self.resume:
            return
        data = self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        (self.dir / "spec.yaml").write_text(to_yaml(data), encoding="utf-8")
        _write_json(self.dir / "run.json", {
            "options": asdict(self.options), "dataset": {"name": self.index.name, "root": str(self.index.root),
                                                         "classes": len(self.index.classes),
                                                         "train": len(self.task.train.items),
                                                         "tests": {k: len(p.items) for k, p in self.task.tests.items()},
                                                         "missing_skipped": self.index.missing},
            "protocol": self.task.protocol, "device": self.device, "precision": self.settings.precision,
            "world_size": self.world.size, "seed": self.seed,
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
            "command": " ".join(sys.argv)})

    def _log(self, record: dict) -> None:
        if self.world.main:
            with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    # -- training
    def fit(self) -> dict[str, Any]:
        self._record_start()
        progress_state = {"stage": 0, "epoch": 0, "best": -1.0}
        resumed = False
        bad: set[str] = set()
        with _progress(self.console) as progress:
            for stage_index, (stage_name, stage) in enumerate(_stages(self.spec)):
                if self.resume and not resumed and stage_index < self._saved_stage():
                    continue
                parts = set(stage.trains) if stage else set(self.model.trainable_parts)
                self.model.set_trainable(parts)
                losses = dict(stage.losses) if stage else None
                epochs = self.options.epochs or (stage.epochs if stage and stage.epochs else self.spec.train.epochs)
                lr = self.options.lr or (stage.lr if stage and stage.lr else self.spec.train.lr)
                warmup = stage.warmup_epochs if stage and stage.warmup_epochs is not None else self.spec.train.warmup_epochs
                dataset = self._train_data(progress)
                per_epoch = math.ceil(len(dataset) / (self.settings.batch_size * self.world.size))
                if self.settings.max_steps:
                    per_epoch = min(per_epoch, self.settings.max_steps)
                optimizer = make_optimizer(self.model, self.spec.train, lr, self.model.trainable_parts)
                steps = max(1, math.ceil(per_epoch / self.settings.accumulate))
                scheduler = make_schedule(optimizer, self.spec.train.schedule, int(warmup * steps), epochs * steps)
                scaler = torch.amp.GradScaler() if self.settings.precision == "fp16" else None
                start_epoch = 0
                if self.resume and not resumed:
                    saved = json.loads((self.dir / "checkpoints" / "resume.json").read_text())["progress"]
                    fresh_stage = saved["epoch"] == 0  # the previous stage ended: this one starts anew
                    progress_state = load_state(self.dir / "checkpoints", self.model,
                                                None if fresh_stage else optimizer, None if fresh_stage else scheduler)
                    start_epoch = progress_state["epoch"]
                    resumed = True
                    self.console.print(f"resuming {self.dir} at stage {stage_name}, epoch {start_epoch + 1}")
                net = self._wrap()
                for epoch in range(start_epoch, epochs):
                    task = progress.add_task(f"{stage_name} epoch {epoch + 1}/{epochs}", total=per_epoch, loss="-",
                                             speed="-")
                    try:
                        result = train_epoch(self.model, net, self.spec, self.task.train, dataset, optimizer, scheduler,
                                             scaler, losses, self.settings, self.world, self.seed, epoch, progress, task)
                    except LossNotFinite as e:
                        raise DataError(f"{e}; the run stopped. The last good checkpoint is "
                                        f"{self.dir / 'checkpoints' / 'last.safetensors'} (it loads as usual)") from None
                    bad.update(result.bad)
                    record = {"stage": stage_name, "epoch": epoch + 1, "loss": result.loss,
                              "lr": optimizer.param_groups[0]["lr"], "clips": result.clips,
                              "clips_per_s": result.clips / max(result.seconds, 1e-9), "seconds": result.seconds,
                              "bad_videos": len(result.bad)}
                    main_name, main_part = next(iter(self.task.tests.items()))
                    if (epoch + 1) % self.options.eval_every == 0 or epoch + 1 == epochs:
                        single = ClipConfig(self.clip.frames, self.clip.size, self.clip.window, flip=False,
                                            device=self.clip.device)
                        metrics = evaluate(self.model, self.spec, main_part, ClipDataset(main_part.items, single, False),
                                           self.settings, self.world)
                        record[main_name] = {k: v for k, v in metrics.items()
                                             if k not in ("per_class", "bad", "scores", "labels")}
                        if metrics["top1"] > progress_state["best"] and self.world.main:
                            progress_state["best"] = metrics["top1"]
                            save_trainable(self.model, self.dir / "checkpoints" / "best.safetensors",
                                           {"stage": stage_name, "epoch": epoch + 1, "top1": metrics["top1"]})
                    self._log(record)
                    progress_state.update(stage=stage_index, epoch=epoch + 1)
                    if epoch + 1 == epochs:
                        progress_state.update(stage=stage_index + 1, epoch=0)
                    if self.world.main:
                        save_state(self.dir / "checkpoints", self.model, optimizer, scheduler, progress_state,
                                   {"stage": stage_name, "epoch": epoch + 1})
            summary = self.test(progress)
        summary["bad_videos"] = sorted(bad | set(summary.get("bad_videos", [])))
        if self.world.main:
            _write_json(self.dir / "summary.json", summary)
        return summary

    def _train_data(self, progress):
        if not self.options.cache_features:
            return ClipDataset(self.task.train.items, self.clip, train=True, seed=self.seed)
        from composer.train.features import CachedClips

        cached = CachedClips(self.model, self.task.train.items, self.clip, Path(self.options.cache_features),
                             self.device)
        task = progress.add_task("caching frozen features", total=len(cached), loss="-", speed="-")
        bad = cached.fill(progress, task)
        if bad:
            self.console.print(f"{len(bad)} training video(s) could not be decoded and are skipped")
        return cached

    def _saved_stage(self) -> int:
        record = json.loads((self.dir / "checkpoints" / "resume.json").read_text())
        return record["progress"]["stage"]

    def _wrap(self):
        net = self.model
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.world.local_rank] if self.device.startswith("cuda") else None
            net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
        return compiled(net, self.console) if self.options.compile else net

    # -- testing
    def test(self, progress=None) -> dict[str, Any]:
        """Multi-view evaluation of every test part."""
        results: dict[str, Any] = {"protocol": self.task.protocol, "views": [self.test_clip.clips, self.test_clip.crops],
                                   "parts": {}}
        bad: list[str] = []
        per_class = {}
        for name, part in self.task.tests.items():
            task = progress.add_task(f"test {name} ({self.test_clip.clips}x{self.test_clip.crops} views)",
                                     total=None, loss="-", speed="-") if progress else None
            metrics = evaluate(self.model, self.spec, part, ClipDataset(part.items, self.test_clip, False),
                               self.settings, self.world, progress, task)
            bad += metrics.pop("bad")
            self.scores[name] = (metrics.pop("scores"), metrics.pop("labels"))
            per_class[name] = metrics.pop("per_class", {})
            metrics.pop("finite", None)
            results["parts"][name] = metrics
        if set(results["parts"]) == {"base", "novel"}:
            results["harmonic_mean"] = harmonic_mean(results["parts"]["base"]["top1"], results["parts"]["novel"]["top1"])
        results["bad_videos"] = sorted(set(bad))
        results["run_dir"] = str(self.dir)
        if self.world.main:
            _write_json(self.dir / "per_class.json", per_class)
        return results


def compiled(net, console: Console):
    """torch.compile(net), falling back to eager execution (with a message) if compiling fails."""
    fast = torch.compile(net)
    state = {"net": fast}

    def forward(*args, **kwargs):
        try:
            return state["net"](*args, **kwargs)
        except Exception as e:  # any compiler failure: dynamo, inductor, a missing C++ toolchain
            if state["net"] is net:
                raise
            console.print(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); running eagerly")
            state["net"] = net
            return net(*args, **kwargs)

    return forward


def metrics_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['protocol']}, {summary['views'][0]} clip(s) x {summary['views'][1]} crop(s)",
                  title_justify="left")
    for col in ("test", "clips", "top-1", "top-5", "mean class"):
        table.add_column(col, justify="left" if col == "test" else "right")
    for name, m in summary["parts"].items():
        table.add_row(name, str(m["count"]), f"{m['top1']:.2f}", f"{m['top5']:.2f}" if "top5" in m else "-",
                      f"{m['mean_class']:.2f}" if "mean_class" in m else "-")
    if "harmonic_mean" in summary:
        table.add_row("harmonic mean", "", f"{summary['harmonic_mean']:.2f}", "", "")
    return table


def evaluate_checkpoint(spec_path: str, checkpoint: str, options: RunOptions) -> dict[str, Any]:
    """`composer eval`: load a trainable-only checkpoint and run the test protocol."""
    run = Run(spec_path, options)
    load_trainable(run.model, checkpoint)
    if run.world.main:
        os.makedirs(run.dir, exist_ok=True)
    return run.test()
