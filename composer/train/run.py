"""`composer run`: a spec, a dataset and a protocol in; a run directory out (its files: composer/rundir/).

The run checks everything it can before it writes (options, weights, the resume record, every stage's memory
plan, the data), then trains each stage through Hugging Face Accelerate (composer/train/accel.py; the batch
size is the global one), saving after every epoch, and tests with the Evaluator (composer/train/evaluator.py).
"""

from __future__ import annotations

import json
import math
import platform
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate.state import PartialState
from accelerate.utils import broadcast_object_list
from rich.console import Console

from composer.compiler.compile import BuildOptions, check_weights_kind, compile_spec, tiny_sets
from composer.data.check import check_task
from composer.data.clips import ClipDataset, clip_configs, once_per_video
from composer.data.datasets import load_dataset
from composer.data.protocols import make_task
from composer.errors import DataError, SpecError
from composer.rundir.card import write_card
from composer.rundir.checkpoint_dir import describe, latest_checkpoint
from composer.rundir.new import check_writable, new_run_dir
from composer.rundir.reading import check_resume_dir, forget_epochs_after, model_info
from composer.rundir.recorded import weights_record
from composer.rundir.records import write_bad_videos, write_json
from composer.rundir.resolve import resolve
from composer.rundir.resume import RECORD_VERSION, EpochPosition
from composer.rundir.run_options import RunOptions, check_run_options, warmup_warnings
from composer.rundir.state import check_resumable, load_state
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
from composer.train.evaluator import Evaluator, check_heads
from composer.train.features import cache_features
from composer.train.fsdp_state import before_sharding, check_shardable, scatter_optimizer_state
from composer.train.loop import EpochResult, LossNotFinite, Settings, TrainLoader, train_epoch
from composer.train.optim import make_optimizer, make_schedule
from composer.train.preempt import signals_caught
from composer.train.preflight import preflight
from composer.train.saving import Saver
from composer.train.stages import StagePlan, recompute_for, stages_of
from composer.train.tracking import parse_trackers, start_trackers
from composer.version import composer_version


class Run:
    """One training run (or a resumed one)."""

    def __init__(self, spec_path: str | None, options: RunOptions, resume: Path | None = None,
                 console: Console | None = None, changes: list[dict[str, Any]] | None = None) -> None:
        """Everything is checked before the run directory is written (options, weights, the resume record,
        batch sizes, the data, every stage's memory plan). `changes`: the options a resume changes
        (--override), recorded in run.json with the step."""
        self.options, self.resume, self.changes, self.spec_path = options, resume, changes or [], spec_path
        check_run_options(options)  # typed or read from run.json: before anything is written
        check_weights_kind(options.weights, options.tiny)  # before anything is written
        self.weights = weights_record(options.weights, options.tiny)
        if resume is not None:
            check_resume_dir(resume, self.weights)
        sets = tiny_sets(options.sets, options.tiny)
        self.spec = load_spec(resume / "spec.yaml" if resume else spec_path, sets if not resume else (),
                              options.unsets if not resume else ())
        if resume is not None:
            check_resumable(resume / "checkpoints", len(stages_of(self.spec)))
        for name, batch in (("--batch-size", options.batch_size), ("--eval-batch-size", options.eval_batch_size)):
            too_big = check_batch(self.spec, batch, name) if batch is not None else None
            if too_big:
                raise DataError(too_big)
        self.trackers = parse_trackers(options.log_with)
        state = start_processes(options.device)
        self.main = state.is_main_process
        self.console = console or Console(stderr=True, quiet=not self.main)
        self.resolved = resolve(self.spec, options)  # seed, batch, precision and schedules, settled once
        self.seed, self.global_batch = self.resolved.seed, self.resolved.batch
        # the dataset options (name, root, split, protocol, shots, eval dataset) before the run directory
        self.index = load_dataset(options.dataset, options.data_root, options.split, options.skip_missing)
        target = load_dataset(options.eval_dataset, options.eval_root, options.split, options.skip_missing) \
            if options.eval_dataset else None
        self.task = make_task(options.protocol, self.index, options.shots, self.seed, target)
        self._start(state)
        self._build({**self.index.files, **(target.files if target else {})})
        self._check_start()

    def _start(self, state: PartialState) -> None:
        """The accelerator (precision and --fsdp checked first), the run directory and its log, the loaders'
        settings."""
        options = self.options
        accel = AccelOptions(options.device, self.resolved.precision, self.spec.train.accumulate, options.fsdp,
                             self.trackers)
        check_accel(accel)  # precision and --fsdp, before the run directory
        if options.fsdp:
            check_shardable(self.spec, BuildOptions("meta", options.tiny, len(self.task.train.classes),
                                                    options.weights))
        self.dir = self._run_dir(state)
        self.accelerator, self.precision = make_accelerator(replace(accel, run_dir=self.dir))
        self.log = RunLog(self.console, self.dir / "run.log" if self.main else None)
        self.device = device_name(self.accelerator)
        self.decode = self.device if options.gpu_decode and self.device.startswith("cuda") else "cpu"
        self.settings = Settings(batch_size=per_process_batch(self.global_batch, self.accelerator.num_processes),
                                 workers=0 if self.decode != "cpu" else options.workers,  # CUDA cannot start there
                                 grad_clip=self.spec.train.grad_clip, max_steps=options.max_steps,
                                 save_every=options.save_every, eval_batch_size=options.eval_batch_size)

    def _build(self, files: dict[str, Path]) -> None:
        """Every stage's plan, then the model, its clips, its evaluator and saver."""
        options = self.options
        # every stage's plan, before anything runs: a stage that cannot fit stops the run now, not hours in
        self.recomputes = [recompute_for(self.spec, options, self.settings.batch_size, self.precision,
                                         len(self.task.train.classes), stage) for stage in stages_of(self.spec)]
        torch.manual_seed(self.seed)  # right before the build: tiny weights come from the seed alone
        self.model = compile_spec(self.spec, BuildOptions(device=self.device, tiny=options.tiny,
                                                          load_weights=not options.tiny, plan=options.plan,
                                                          weights=options.weights, recompute=self.recomputes[0],
                                                          num_classes=len(self.task.train.classes),
                                                          # FSDP flattens tensors of one dtype per unit
                                                          precision="fp32" if options.fsdp else self.precision))
        if self.model.graph.predict is None:
            raise SpecError("the spec has no prediction to evaluate: name its [B, C] scores in `predict`")
        self.model.use_dataset_files(files)
        check_heads(self.model, self.task)
        self.clip, self.test_clip = clip_configs(self.spec, self.index.flip, self.decode, self.settings.workers,
                                                 options.short_videos, colour_in_worker=self.device == "cpu")
        self.net = None  # the prepared model (DDP or FSDP wrapped on several processes) once a stage starts
        self.evaluator = Evaluator(self.accelerator, self.spec, self.model, self.task, self.settings, self.clip,
                                   self.test_clip, options.fsdp)
        self.saver = Saver(self.accelerator, self.model, self.dir / "checkpoints", options.fsdp)
        self.model_info: dict[str, Any] | None = None  # the build report the model card shows, computed once

    def _check_start(self) -> None:
        """Every video opened once (the main process only: the report is its to write), what is wrong said; a
        new run's first batch (a NaN loss or saturated logits is refused, not trained on); the warm-up."""
        self.data_report = check_task(self.task, self.index, self.clip.frames, self.options.short_videos,
                                      self.options.workers, Path(self.options.out) / ".scan-cache", self.log.print,
                                      scan=self.main)
        if self.main and not self.data_report.ok:
            self.console.print(self.data_report.text(), highlight=False, soft_wrap=True)
        if self.resume is None:
            preflight(self.model, self.spec, self.task.train, self.clip, self.seed, self.settings.batch_size,
                      self.device, self.accelerator.autocast)
        plans = [self._plan(i, name, stage) for i, (name, stage) in enumerate(stages_of(self.spec))]
        self.warnings = warmup_warnings([(p.name, p.epochs, p.warmup) for p in plans]) \
            if self.model.trainable_parts else []  # said at the start of fit() and kept in run.json

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
                "options": asdict(self.options), "dataset": {
                    "name": self.index.name, "root": str(self.index.root), "classes": len(self.index.classes),
                    "train": len(self.task.train.items), "tests": {k: len(p.items) for k, p in self.task.tests.items()},
                    "missing_skipped": self.index.missing, "check": self.data_report.to_json()},
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
                for index, (name, stage) in enumerate(stages_of(self.spec) if trains else ()):
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
        self.evaluator.net = self.net
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
        self.saver.kept = describe(latest_checkpoint(self.dir / "checkpoints"))
        dropped = forget_epochs_after(self.dir / "metrics.jsonl", [name for name, _ in stages_of(self.spec)],
                                      progress) if self.main else 0
        if dropped:
            self.log.print(f"{dropped} epoch record(s) in metrics.jsonl came after the checkpoint resumed from (or "
                           "were not records); they are dropped and those epochs trained again")
        if self.changes and self.main:
            record = json.loads((self.dir / "run.json").read_text())
            at = {"stage": progress["stage"], "epoch": progress["epoch"],
                  "batch": (progress.get("position") or {}).get("batches", 0), "step": _global_step(progress)}
            record.setdefault("changes", []).extend(c | {"from_step": at} for c in self.changes)
            record["options"] = asdict(self.options)
            write_json(self.dir / "run.json", record)
        return progress

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
            self.saver.state(self.net, optimizer, scheduler, mid, self._meta(stage=plan.name, epoch=epoch + 1,
                                                                   batch=at.batches, step=_global_step(mid)))

        try:
            return train_epoch(self.accelerator, self.net, self.spec, self.task.train, loader, prepared, scheduler,
                               plan.losses, self.settings, epoch=epoch, global_step=progress["step"],
                               on_step=on_step if world == 1 or self.main else None, forward=forward,
                               position=position, on_save=on_save, stop=stop)
        except LossNotFinite as e:
            last = self.saver.kept
            kept = (f"the last good state is {last}; its weights load as usual" if last
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
            name, metrics = self.evaluator.epoch()
            record[name] = {k: v for k, v in metrics.items()
                            if k not in ("per_class", "bad", "indices", "scores", "labels")}
            if metrics["top1"] > progress["best"]:
                progress["best"] = metrics["top1"]
                self.saver.best(self.net, self._meta(stage=plan.name, epoch=epoch + 1, top1=metrics["top1"]))
        self._log(record, progress["step"])
        progress.update(stage=plan.index, epoch=epoch + 1)
        if epoch + 1 == plan.epochs:
            progress.update(stage=plan.index + 1, epoch=0)
        self.saver.state(self.net, optimizer, scheduler, progress, self._meta(stage=plan.name, epoch=epoch + 1))
        self._write_card()
        return progress

    def _train_data(self, bars):
        """The training clips, or with --cache-features their frozen features (composer/train/features.py)."""
        if not self.options.cache_features:
            return ClipDataset(self.task.train.items, self.clip, train=True, seed=self.seed)
        cached, bad = cache_features(self.accelerator, self.model, self.task.train.items, self.clip,
                                     Path(self.options.cache_features), self.device, self.precision, bars)
        if bad:
            self.log.print(f"{len(bad)} training video(s) could not be decoded and are skipped")
        return cached

    # -- testing
    def test(self, bars=None) -> dict[str, Any]:
        """Multi-view evaluation of every test part (composer/train/evaluator.py)."""
        return self.evaluator.test(self.dir if self.main else None, bars) | {"run_dir": str(self.dir)}

    def finish(self) -> None:
        """End the trackers and leave the process group (every process, after its last collective)."""
        self.evaluator.close()
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        self.log.close()


def _global_step(progress: dict[str, Any]) -> int:
    """The run's optimiser step: progress["step"] counts up to the epoch's start, the position within it."""
    return progress["step"] + (progress.get("position") or {}).get("steps", 0)

