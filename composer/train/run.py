"""`composer run`: a spec, a dataset and a protocol in; a run directory out.

runs/<spec>-<time>/
    spec.yaml         the spec as it ran (inheritance and --set applied)
    run.json          the complete record: composer version, every option, dataset, protocol, processes,
                      versions, and the options a resume changed (--override)
    run.log           the console output, as plain lines
    metrics.jsonl     one line per epoch: stage, loss, lr, throughput, single-view test metrics
    checkpoints/      step-N/ (weights, optimiser, generators, progress, manifest) after every epoch and every
                      --save-every N steps, the newest 2 kept, `latest` naming the newest; best.safetensors
                      (composer/rundir/checkpoint_dir.py)
    summary.json      final multi-view metrics per test part, bad videos
    README.md         the model card (composer/rundir/card.py): written at the start, after every epoch and
                      at the end
    per_class.json    per-class accuracy
    confusion.json    per test part: its classes, and the matrix (rows = true, columns = predicted, multi-view)
    bad_videos.txt    the videos that could not be decoded, one per line (empty if none)
    learning-curves.png, confusion-<part>.png   pictures of the run (composer/viz/plots.py)
    (tracker files)   TensorBoard events, mlflow.db, ... (--log-with)
Only the main process writes, with one permission policy (composer/files.py). Everything else (which
stage, epoch and batch come next, optimiser state, generators) is in the checkpoints folder, so
`--resume RUN_DIR` continues exactly where an interrupted run stopped (composer/rundir/resume.py rebuilds
the options from run.json).
Training goes through Hugging Face Accelerate (composer/train/accel.py); the batch size is the global one.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate.state import PartialState
from accelerate.utils import broadcast_object_list
from rich.console import Console

from composer.compiler.budget import choose_recompute
from composer.compiler.compile import BuildOptions, check_weights_kind, compile_spec, tiny_sets
from composer.compiler.memory import MemoryModel, bill_lines, default_budget, format_bytes
from composer.data.check import CheckReport, check_videos
from composer.data.clips import ClipConfig, ClipDataset, once_per_video
from composer.data.datasets import load_dataset
from composer.data.protocols import Task, harmonic_mean, make_task
from composer.data.scan import ScanCache
from composer.data.video import decode_threads
from composer.errors import DataError, SpecError
from composer.graph.plan import Recompute
from composer.rundir.card import write_card
from composer.rundir.checkpoint import save_trainable
from composer.rundir.checkpoint_dir import describe, latest_checkpoint
from composer.rundir.new import check_writable, new_run_dir
from composer.rundir.reading import epoch_of, model_info, read_run
from composer.rundir.recorded import check_same_weights, weights_record
from composer.rundir.records import write_bad_videos, write_confusion, write_json, write_text
from composer.rundir.resolve import resolve
from composer.rundir.resume import RECORD_VERSION, EpochPosition, progress_problem, read_record
from composer.rundir.run_options import RunOptions, check_run_options, warmup_warnings
from composer.rundir.state import load_state, save_state, saved_progress
from composer.spec.limits import check_batch
from composer.spec.load import load_spec
from composer.spec.printer import to_yaml
from composer.train.accel import (
    AccelOptions,
    check_accel,
    compiled,
    device_name,
    make_accelerator,
    per_process_batch,
    start_processes,
)
from composer.train.console import Bars, RunLog
from composer.train.fsdp_state import before_sharding, check_shardable, gather_optimizer_state, scatter_optimizer_state
from composer.train.loop import EpochResult, LossNotFinite, Settings, TrainLoader, eval_loader, evaluate, train_epoch
from composer.train.optim import make_optimizer, make_schedule
from composer.train.preempt import signals_caught
from composer.train.preflight import preflight
from composer.train.tracking import parse_trackers, start_trackers
from composer.version import composer_version


@dataclass(frozen=True)
class StagePlan:
    """What one stage trains, and how long and fast."""

    name: str
    index: int
    parts: set[str]
    losses: dict[str, float] | None
    epochs: int
    lr: float
    warmup: float


def _check_heads(model, task: Task) -> None:
    """A fixed-size classifier cannot score classes it was not trained on (base-to-novel, zero-shot)."""
    fixed = [c for c in model.graph.calls_feeding(model.graph.predict) if c.kind.fixed_classes]
    for name, part in task.tests.items():
        if fixed and part.classes != task.train.classes:
            raise DataError(f"the {task.protocol} protocol tests '{name}' on classes the model never trained on, "
                            f"but {fixed[0].component} ({fixed[0].kind.name}) has one output per training class; "
                            "use a spec that scores classes by their names (a text tower and cosine_logits)")


def _stages(spec) -> list[tuple[str, Any]]:
    return list(spec.stages.items()) if spec.stages else [("train", None)]


def _check_progress(folder: Path, stages: int) -> None:
    """The latest checkpoint verifies and records a progress a run of `stages` stages can continue from."""
    problem = progress_problem(saved_progress(folder), stages)
    if problem:
        raise DataError(f"{latest_checkpoint(folder)}: {problem}; it cannot be resumed")




def recompute_for(spec, options: RunOptions, batch_size: int, precision: str, classes: int,
                  stage: tuple[str, Any] | None = None) -> bool | Recompute:
    """The plan's recomputation: --recompute all/none as given; auto chooses, on the meta device, the
    fewest frozen blocks to recompute so that a step of the per-process batch fits the device's budget
    (all of them when no budget is known). `stage` (name, Stage): plan that stage's step (what it trains, its losses);
    every stage needs its own plan, since a later one may train lower in a tower or through other losses.
    Records from before `auto` hold True/False."""
    setting = {True: "all", False: "none"}.get(options.recompute, options.recompute)
    if setting != "auto" or not options.plan:
        return setting != "none"
    known = default_budget()
    if known is None:
        return True
    meta = compile_spec(spec, BuildOptions(device="meta", tiny=options.tiny, num_classes=classes,
                                           weights=options.weights))
    precision = precision if precision in ("bf16", "fp16") else "fp32"
    losses = dict(stage[1].losses) if stage and stage[1] else None
    if stage and stage[1]:
        meta.set_trainable(set(stage[1].trains))
    choice = choose_recompute(meta, precision, batch_size, *known, losses=losses)
    if not choice.fits:
        bill = "\n".join(f"  {line}" for line in
                         bill_lines(MemoryModel(meta, precision, losses).bill(batch_size).as_json()))
        step = f"a training step of stage {stage[0]}" if stage and stage[1] else "a training step"
        raise DataError(f"{step} ({batch_size} clips per process) needs {format_bytes(choice.peak)} even "
                        f"recomputing every frozen block it can, but {known[1]} leaves {format_bytes(known[0])}; give "
                        f"a smaller --batch-size (composer build SPEC --batch-size N shows the largest that fits). "
                        f"The bill:\n{bill}")
    return choice.recompute


class Run:
    """One training run (or a resumed one)."""

    def __init__(self, spec_path: str | None, options: RunOptions, resume: Path | None = None,
                 console: Console | None = None, changes: list[dict[str, Any]] | None = None) -> None:
        """`changes`: the options a resume changes (--override), recorded in run.json with the step."""
        self.options, self.resume, self.changes = options, resume, changes or []
        check_run_options(options)  # typed or read from run.json: before anything is written
        check_weights_kind(options.weights, options.tiny)  # before anything is written
        self.weights = weights_record(options.weights, options.tiny)
        if resume is not None:
            check_same_weights(resume / "run.json", read_record(resume).get("weights"), self.weights)
        if resume is not None and latest_checkpoint(resume / "checkpoints") is None:
            raise DataError(f"{resume} has no checkpoint yet: it stopped before its first save, so there is "
                            "nothing to resume; start the run again")
        if resume is not None:
            read_run(resume)  # every record the run reads back is readable, before any work
        sets = tiny_sets(options.sets, options.tiny)
        self.spec = load_spec(resume / "spec.yaml" if resume else spec_path, sets if not resume else (),
                              options.unsets if not resume else ())
        if resume is not None:
            _check_progress(resume / "checkpoints", len(_stages(self.spec)))
        train = self.spec.train
        for name, batch in (("--batch-size", options.batch_size), ("--eval-batch-size", options.eval_batch_size)):
            too_big = check_batch(self.spec, batch, name) if batch is not None else None
            if too_big:
                raise DataError(too_big)
        self.trackers = parse_trackers(options.log_with)
        state = start_processes(options.device)
        self.main = state.is_main_process
        self.resolved = resolve(self.spec, options)  # seed, batch, precision and schedules, settled once
        self.seed = self.resolved.seed
        # the dataset options (name, root, split, protocol, shots, eval dataset) before the run directory
        index = load_dataset(options.dataset, options.data_root, options.split, options.skip_missing)
        target = load_dataset(options.eval_dataset, options.eval_root, options.split, options.skip_missing) \
            if options.eval_dataset else None
        self.index = index
        self.task = make_task(options.protocol, index, options.shots, self.seed, target)
        accel = AccelOptions(options.device, self.resolved.precision, train.accumulate, options.fsdp, self.trackers)
        check_accel(accel)  # precision and --fsdp, before the run directory
        if options.fsdp:
            check_shardable(self.spec, BuildOptions("meta", options.tiny, len(self.task.train.classes), options.weights))
        self.dir = self._run_dir(state)
        self.accelerator, precision = make_accelerator(replace(accel, run_dir=self.dir))
        self.console = console or Console(stderr=True, quiet=not self.main)
        self.log = RunLog(self.console, self.dir / "run.log" if self.main else None)
        self.kept: str | None = None  # the last state saved (what a NaN stop leaves to resume from)
        self.device = device_name(self.accelerator)
        self.global_batch = self.resolved.batch
        decode = self.device if options.gpu_decode and self.device.startswith("cuda") else "cpu"
        self.settings = Settings(batch_size=per_process_batch(self.global_batch, self.accelerator.num_processes),
                                 workers=0 if decode != "cpu" else options.workers,  # CUDA cannot start in workers
                                 grad_clip=train.grad_clip, max_steps=options.max_steps,
                                 save_every=options.save_every, eval_batch_size=options.eval_batch_size)
        self.precision = precision
        # every stage's plan, before anything runs: a stage that cannot fit stops the run now, not hours in
        self.recomputes = [recompute_for(self.spec, options, self.settings.batch_size, precision,
                                         len(self.task.train.classes), stage) for stage in _stages(self.spec)]
        recompute = self.recomputes[0]
        torch.manual_seed(self.seed)  # right before the build: tiny weights come from the seed alone
        self.model = compile_spec(self.spec, BuildOptions(device=self.device, tiny=options.tiny,
                                                          load_weights=not options.tiny, plan=options.plan,
                                                          weights=options.weights, recompute=recompute,
                                                          num_classes=len(self.task.train.classes),
                                                          # FSDP flattens tensors of one dtype per unit
                                                          precision="fp32" if options.fsdp else precision))
        if self.model.graph.predict is None:
            raise SpecError("the spec has no prediction to evaluate: name its [B, C] scores in `predict`")
        self.model.use_dataset_files({**index.files, **(target.files if target else {})})
        _check_heads(self.model, self.task)
        video = self.spec.video_input()
        if video is None:
            raise SpecError("the spec has no video input to train on")
        views = self.spec.train.views
        short = options.short_videos
        threads = decode_threads(self.settings.workers)
        self.clip = ClipConfig(video.frames, video.size, video.window, flip=index.flip, device=decode, threads=threads,
                               colour_in_worker=self.device == "cpu" and self.settings.workers > 0, short=short)
        self.test_clip = ClipConfig(video.frames, video.size, video.window, views.clips, views.crops, flip=False,
                                    device=decode, threads=threads, short=short)
        self.eval_loaders: dict[tuple[str, ClipConfig], Any] = {}  # test part and clips -> loader, workers kept
        self.data_report = self._check_data(video.frames)
        if resume is None:  # a NaN loss or saturated logits on the first batch: refused, not trained on
            preflight(self.model, self.spec, self.task.train, self.clip, self.seed, self.settings.batch_size,
                      self.device, self.accelerator.autocast)
        self.net = None  # the prepared model (DDP or FSDP wrapped on several processes) once a stage starts
        self.scores: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # test part -> (scores, labels)
        self.indices: dict[str, list[int]] = {}  # test part -> the part's item index of each row of its scores
        self.spec_path = spec_path
        self.model_info: dict[str, Any] | None = None  # the build report the model card shows, computed once
        plans = [self._plan(i, name, stage) for i, (name, stage) in enumerate(_stages(self.spec))]
        self.warnings = warmup_warnings([(p.name, p.epochs, p.warmup) for p in plans]) \
            if self.model.trainable_parts else []  # said at the start of fit() and kept in run.json

    def _check_data(self, frames: int) -> CheckReport:
        """Open every video of the task once, as `composer data check --no-decode` does (`--workers` at a time;
        what the scan cache remembers is not opened again: composer/data/scan.py), and say what is wrong.
        Only the main process scans: the report is its to write, and the other processes would only repeat it."""
        items = [*self.task.train.items, *(i for part in self.task.tests.values() for i in part.items)]
        report = CheckReport(self.index.name, str(self.index.root), videos=len({i.path for i in items}),
                             frames=frames, short_policy=self.options.short_videos, index=list(self.index.problems))
        if not self.main:
            return report
        start = time.perf_counter()
        cache = ScanCache.for_dataset(self.index.name, self.index.root, Path(self.options.out) / ".scan-cache")
        check_videos(report, items, decode=False, workers=self.options.workers, cache=cache)
        for note in cache.notes:
            self.log.print(note)
        self.log.print(f"{report.checked} video(s) checked in {time.perf_counter() - start:.2f} s "
                       f"({report.cached} remembered by the scan cache)")
        if not report.ok:
            self.console.print(report.text(), highlight=False, soft_wrap=True)
        return report

    def _run_dir(self, state: PartialState) -> Path:
        """The main process names the run directory (its clock decides the name) and every rank uses it."""
        folder = [self.resume or (new_run_dir(self.options.out, self.spec.name) if self.main else None)]
        if state.num_processes > 1:
            broadcast_object_list(folder)
        if self.main:
            check_writable(folder[0])
        return Path(folder[0])

    # -- files
    def _record_start(self, resumed_step: int = 0) -> None:
        """run.json and spec.yaml of a new run; the trackers (told the step a resumed run continues after)."""
        if self.main and not self.resume:
            data = self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            (self.dir / "spec.yaml").write_text(to_yaml(data), encoding="utf-8")
            write_json(self.dir / "run.json", {
                "composer": composer_version(), "record_version": RECORD_VERSION,
                "options": asdict(self.options), "dataset": {"name": self.index.name, "root": str(self.index.root),
                                                             "classes": len(self.index.classes),
                                                             "train": len(self.task.train.items),
                                                             "tests": {k: len(p.items) for k, p in self.task.tests.items()},
                                                             "missing_skipped": self.index.missing,
                                                             "check": self.data_report.to_json()},
                "protocol": self.task.protocol, "device": self.device, "precision": self.precision,
                "processes": self.accelerator.num_processes, "global_batch": self.global_batch,
                "per_process_batch": self.settings.batch_size, "seed": self.seed, "weights": self.weights,
                "versions": {"python": platform.python_version(), "torch": torch.__version__},
                "command": " ".join(sys.argv), "spec": self.spec_path, "changes": [], "warnings": self.warnings})
        if self.trackers:
            spec = self.spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            note = start_trackers(self.accelerator, self.trackers, self.dir, self.dir.name,
                                  {"spec": spec, "options": asdict(self.options)}, self.options.tracking_uri,
                                  resumed_step)
            if note:
                self.log.print(note)

    def _write_card(self) -> None:
        """README.md, the run's model card, as the directory stands now (main process only)."""
        if self.main:
            if self.model_info is None:
                self.model_info = model_info(self.dir, json.loads((self.dir / "run.json").read_text()),
                                             len(self.task.train.classes))
            write_card(self.dir, self.model_info)

    def _log(self, record: dict, step: int) -> None:
        """metrics.jsonl gets the epoch's record; the trackers its loss and test metrics."""
        if self.main:
            with open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        values = {"train/loss": record["loss"]}
        for part in self.task.tests:
            for key in ("top1", "top5", "mean_class"):
                if key in record.get(part, {}):
                    values[f"{part}/{key}"] = record[part][key]
        self.accelerator.log(values, step=step)

    def _meta(self, **extra: Any) -> dict[str, Any]:
        """What every checkpoint records besides its tensors (predict reads classes, seed and size)."""
        return extra | {"classes": list(self.task.train.classes), "seed": self.seed,
                        "size": "tiny" if self.options.tiny else "full", **self.weights}

    def _trainable_tensors(self) -> dict[str, torch.Tensor] | None:
        """Under FSDP every rank takes part in gathering the full trainable tensors; otherwise None (each
        rank's unwrapped model holds them whole)."""
        if not self.options.fsdp:
            return None
        full = self.accelerator.get_state_dict(self.net)
        return {n: full[n] for n in self.model.trainable_state()} if self.main else None

    def _save_state(self, optimizer, scheduler, progress: dict[str, Any], meta: dict[str, Any]) -> None:
        """The state to resume from (at an epoch's end, or mid-epoch with progress["position"]). Under FSDP
        every rank takes part in gathering the whole weights and optimiser state, which the main process
        saves as any other run's (composer/train/fsdp_state.py)."""
        tensors, whole = self._trainable_tensors(), None
        if self.options.fsdp:
            whole = gather_optimizer_state(self.net, optimizer, self.main)
        if self.main:
            save_state(self.dir / "checkpoints", self.accelerator.unwrap_model(self.net), optimizer, scheduler,
                       progress, meta, tensors=tensors, optimizer_state=whole)
        kept = latest_checkpoint(self.dir / "checkpoints") if self.main else None
        self.kept = describe(kept) if kept else None

    def _save_best(self, meta: dict[str, Any]) -> None:
        tensors = self._trainable_tensors()
        if self.main:
            save_trainable(self.accelerator.unwrap_model(self.net), self.dir / "checkpoints" / "best.safetensors",
                           meta, tensors)

    # -- training
    def fit(self) -> dict[str, Any]:
        """Train every stage (from where a resumed run stopped), then test; returns the summary."""
        for line in self.warnings:
            self.log.print(f"warning: {line}")
        saved = self._load_progress() if self.resume else None
        self._record_start(_global_step(saved) if saved else 0)
        self._write_card()
        progress = {"stage": 0, "epoch": 0, "best": -1.0, "step": 0, "position": None}
        bad: set[str] = set()
        trains = bool(self.model.trainable_parts)  # False: a zero-shot spec, tested as it is
        with Bars(self.log, self.options.progress_every) as bars:
            if not trains:
                self.log.print(f"{self.spec.name} trains nothing: it is tested as it is (zero-shot), no checkpoint")
            with signals_caught() as stop:  # while training: a cluster's signal stops after a step, saved
                for index, (name, stage) in enumerate(_stages(self.spec) if trains else ()):
                    if saved is not None and index < saved["stage"]:
                        continue
                    progress = self._train_stage(self._plan(index, name, stage), progress, saved, bars, bad, stop)
                    saved = None
            summary = self.test(bars)
        summary["bad_videos"] = once_per_video([*bad, *summary["bad_videos"]])
        if self.main:
            write_json(self.dir / "summary.json", summary)
            write_bad_videos(self.dir / "bad_videos.txt", summary["bad_videos"])
            from composer.viz.plots import draw_run  # matplotlib only once a run has something to draw

            draw_run(self.dir, learning_curves=trains)
        self._write_card()
        return summary

    def _plan(self, index: int, name: str, stage) -> StagePlan:
        """The stage's parts, losses and schedule (composer/rundir/resolve.py)."""
        schedule = self.resolved.schedules[index]
        return StagePlan(name, index, set(stage.trains) if stage else set(self.model.trainable_parts),
                         dict(stage.losses) if stage else None, schedule.epochs, schedule.lr, schedule.warmup)

    def _train_stage(self, plan: StagePlan, progress: dict[str, Any], saved: dict[str, Any] | None, bars,
                     bad: set[str], stop: Callable[[], bool]) -> dict[str, Any]:
        """One stage: its optimiser and schedule, the restored state of a resumed run, then its epochs."""
        self.model.set_trainable(plan.parts)
        self.model.set_recompute(self.recomputes[plan.index])  # planned for this stage's step
        dataset = self._train_data(bars)
        loader = TrainLoader(dataset, self.settings, self.accelerator, self.seed)
        per_epoch = math.ceil(len(dataset) / self.global_batch)
        if self.settings.max_steps:
            per_epoch = min(per_epoch, self.settings.max_steps)
        optimizer = make_optimizer(self.model, self.spec.train, plan.lr, self.model.trainable_parts)
        steps = max(1, math.ceil(per_epoch / self.spec.train.accumulate))
        scheduler = make_schedule(optimizer, self.spec.train.schedule, int(plan.warmup * steps), plan.epochs * steps)
        first_epoch, held = 0, []  # held: an FSDP optimiser's state, loaded once the model is sharded
        if saved is not None:
            progress, first_epoch = self._restore(plan, saved, optimizer, scheduler,
                                                  held.append if self.options.fsdp else None)
        names = before_sharding(self.model, optimizer) if self.options.fsdp else []
        self.net, prepared = self.accelerator.prepare(self.model, optimizer)
        if held:
            scatter_optimizer_state(self.net, optimizer, held[0], names)
        forward = compiled(self.net, self.log) if self.options.compile else self.net
        for epoch in range(first_epoch, plan.epochs):
            self.net.train()
            result = self._train_epoch(plan, forward, loader, prepared, optimizer, scheduler, epoch, per_epoch,
                                       progress, bars, stop)
            bad.update(result.bad)
            progress = self._finish_epoch(plan, epoch, result, optimizer, scheduler, progress)
        return progress

    def _load_progress(self) -> dict[str, Any]:
        """Where the interrupted run stopped (the checkpoint module verifies what it loads and names what is
        wrong); records the options this resume changes, with the step they take effect at."""
        progress = load_state(self.dir / "checkpoints", self.model)
        self.kept = describe(latest_checkpoint(self.dir / "checkpoints"))
        if self.main:
            self._forget_epochs_after(progress)
        if self.changes and self.main:
            record = json.loads((self.dir / "run.json").read_text())
            at = {"stage": progress["stage"], "epoch": progress["epoch"],
                  "batch": (progress.get("position") or {}).get("batches", 0), "step": _global_step(progress)}
            record.setdefault("changes", []).extend(c | {"from_step": at} for c in self.changes)
            record["options"] = asdict(self.options)
            write_json(self.dir / "run.json", record)
        return progress

    def _forget_epochs_after(self, progress: dict[str, Any]) -> None:
        """Drop the metrics.jsonl records of epochs the checkpoint does not contain (an epoch is recorded just
        before its state is saved, so a run stopped by a failed save recorded one epoch more): they are
        trained again, and each epoch stays in the file once."""
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            return
        order = {name: index for index, (name, _) in enumerate(_stages(self.spec))}
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        saved = (progress["stage"], progress["epoch"])  # a finished stage s is saved as (s + 1, 0)
        kept = [line for line in lines if (epoch_of(line, order) or (math.inf, 0)) <= saved]
        if len(kept) < len(lines):
            self.log.print(f"{len(lines) - len(kept)} epoch record(s) in metrics.jsonl came after the checkpoint "
                           "resumed from (or were not records); they are dropped and those epochs trained again")
            write_text(path, "".join(line + "\n" for line in kept))

    def _restore(self, plan: StagePlan, saved: dict[str, Any], optimizer, scheduler,
                 load_optimizer=None) -> tuple[dict[str, Any], int]:
        """Weights, generators and (mid-stage) the optimiser and schedule of the interrupted run
        (`load_optimizer`: what takes the optimiser's state instead of the optimiser itself)."""
        fresh_stage = saved["stage"] == plan.index and saved["epoch"] == 0 and not saved.get("position")
        progress = load_state(self.dir / "checkpoints", self.model, None if fresh_stage else optimizer,
                              None if fresh_stage else scheduler, load_optimizer=load_optimizer)
        progress.setdefault("step", 0)
        progress.setdefault("position", None)
        batch = (progress["position"] or {}).get("batches", 0)
        where = f"epoch {progress['epoch'] + 1}" + (f", batch {batch + 1}" if batch else "")
        self.log.print(f"resuming {self.dir} at stage {plan.name}, {where}")
        return progress, progress["epoch"]

    def _train_epoch(self, plan: StagePlan, forward, loader: TrainLoader, prepared, optimizer, scheduler, epoch: int,
                     per_epoch: int, progress: dict[str, Any], bars, stop: Callable[[], bool]) -> EpochResult:
        """`prepared` is the optimiser as Accelerate wraps it, `optimizer` the plain one (what is saved)."""
        task = bars.add_task(f"{plan.name} epoch {epoch + 1}/{plan.epochs}", total=per_epoch, loss="-", speed="-")
        world = self.accelerator.num_processes
        saved = progress.get("position")
        position = EpochPosition(**saved) if saved else None

        def on_step(step: int, loss: float, clips: int, seconds: float) -> None:
            bars.update(task, completed=step, loss=f"{loss:.4f}", speed=f"{clips / max(seconds, 1e-9):.1f}")

        def on_save(at: EpochPosition) -> None:
            mid = dict(progress, stage=plan.index, epoch=epoch, position=asdict(at))
            self._save_state(optimizer, scheduler, mid, self._meta(stage=plan.name, epoch=epoch + 1,
                                                                   batch=at.batches, step=_global_step(mid)))

        try:
            return train_epoch(self.accelerator, self.net, self.spec, self.task.train, loader, prepared, scheduler,
                               plan.losses, self.settings, epoch=epoch, global_step=progress["step"],
                               on_step=on_step if world == 1 or self.main else None, forward=forward,
                               position=position, on_save=on_save, stop=stop)
        except LossNotFinite as e:
            kept = (f"the last good state is {self.kept}; its weights load as usual" if self.kept
                    else "no checkpoint was saved before it")
            raise DataError(f"{e}; the run stopped, and {kept}") from None

    def _finish_epoch(self, plan: StagePlan, epoch: int, result: EpochResult, optimizer, scheduler,
                      progress: dict[str, Any]) -> dict[str, Any]:
        """Evaluate when due, record the epoch, keep the best checkpoint and the state to resume from."""
        progress = dict(progress, step=progress["step"] + result.steps, position=None)
        record = {"stage": plan.name, "epoch": epoch + 1, "loss": result.loss, "lr": optimizer.param_groups[0]["lr"],
                  "clips": result.clips, "clips_per_s": result.clips / max(result.seconds, 1e-9),
                  "seconds": result.seconds, "bad_videos": len(result.bad), "skipped_clips": result.skipped}
        if (epoch + 1) % self.options.eval_every == 0 or epoch + 1 == plan.epochs:
            name, metrics = self._evaluate_epoch()
            record[name] = {k: v for k, v in metrics.items()
                            if k not in ("per_class", "bad", "indices", "scores", "labels")}
            if metrics["top1"] > progress["best"]:
                progress["best"] = metrics["top1"]
                self._save_best(self._meta(stage=plan.name, epoch=epoch + 1, top1=metrics["top1"]))
        self._log(record, progress["step"])
        progress.update(stage=plan.index, epoch=epoch + 1)
        if epoch + 1 == plan.epochs:
            progress.update(stage=plan.index + 1, epoch=0)
        self._save_state(optimizer, scheduler, progress, self._meta(stage=plan.name, epoch=epoch + 1))
        self._write_card()
        return progress

    def _evaluate_epoch(self) -> tuple[str, dict[str, Any]]:
        """Single-view metrics of the main test part, for the epoch's record and the best checkpoint."""
        name, part = next(iter(self.task.tests.items()))
        single = ClipConfig(self.clip.frames, self.clip.size, self.clip.window, flip=False, device=self.clip.device,
                            threads=self.clip.threads, short=self.clip.short)
        return name, evaluate(self.accelerator, self._eval_net(), self.spec, self.model.graph.predict, part,
                              self._eval_loader(name, part, single), self.settings)

    def _eval_loader(self, name: str, part, config: ClipConfig):
        """One loader per test part and view count for the whole run: its workers serve every evaluation."""
        key = (name, config)
        if key not in self.eval_loaders:
            self.eval_loaders[key] = eval_loader(ClipDataset(part.items, config, False), self.settings,
                                                 self.accelerator, config.clips * config.crops)
        return self.eval_loaders[key]

    def _eval_net(self):
        """FSDP evaluates through its sharded wrapper; otherwise the plain model (no DDP collectives)."""
        if self.net is None:
            if self.options.fsdp:
                before_sharding(self.model)
            self.net = self.accelerator.prepare_model(self.model, evaluation_mode=not self.options.fsdp)
        return self.net if self.options.fsdp else self.accelerator.unwrap_model(self.net)

    def _train_data(self, bars):
        if not self.options.cache_features:
            return ClipDataset(self.task.train.items, self.clip, train=True, seed=self.seed)
        from composer.train.features import CachedClips

        cached = CachedClips(self.model, self.task.train.items, self.clip, Path(self.options.cache_features),
                             self.device, self.precision)
        with self.accelerator.main_process_first():  # the main process computes, the others then read
            task = bars.add_task("caching frozen features", total=len(cached), loss="-", speed="-")
            with self.accelerator.autocast():  # features in the run's precision, as training would compute them
                bad = cached.fill(bars, task)
        if bad:
            self.log.print(f"{len(bad)} training video(s) could not be decoded and are skipped")
        return cached

    # -- testing
    def test(self, bars=None) -> dict[str, Any]:
        """Multi-view evaluation of every test part."""
        results: dict[str, Any] = {"protocol": self.task.protocol, "views": [self.test_clip.clips, self.test_clip.crops],
                                   "parts": {}}
        bad: list[str] = []
        per_class = {}
        for name, part in self.task.tests.items():
            task = bars.add_task(f"test {name} ({self.test_clip.clips}x{self.test_clip.crops} views)",
                                 total=None, loss="-", speed="-") if bars else None
            metrics = evaluate(self.accelerator, self._eval_net(), self.spec, self.model.graph.predict, part,
                               self._eval_loader(name, part, self.test_clip), self.settings,
                               (lambda done, total: bars.update(task, completed=done, total=total)) if bars else None)
            bad += metrics.pop("bad")
            self.scores[name] = (metrics.pop("scores"), metrics.pop("labels"))
            self.indices[name] = metrics.pop("indices")
            per_class[name] = metrics.pop("per_class", {})
            results["parts"][name] = metrics
        if set(results["parts"]) == {"base", "novel"}:
            results["harmonic_mean"] = harmonic_mean(results["parts"]["base"]["top1"], results["parts"]["novel"]["top1"])
        results["bad_videos"] = once_per_video(bad)
        results["run_dir"] = str(self.dir)
        if self.main:
            write_json(self.dir / "per_class.json", per_class)
            write_confusion(self.dir / "confusion.json",
                            {n: (p.classes, *self.scores[n]) for n, p in self.task.tests.items()})
        return results

    def finish(self) -> None:
        """End the trackers and leave the process group (every process, after its last collective)."""
        self.eval_loaders.clear()  # their worker processes end with them
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        self.log.close()


def _global_step(progress: dict[str, Any]) -> int:
    """The run's optimiser step: progress["step"] counts up to the epoch's start, the position within it."""
    return progress["step"] + (progress.get("position") or {}).get("steps", 0)

