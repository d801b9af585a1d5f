"""Testing a model on a task's parts: the Evaluator that a run uses after its epochs and at its end, and that
`composer eval` uses on a checkpoint, so both score a clip the same way.

After an epoch the main test part is scored single-view (one centre clip: the epoch's record and the best
checkpoint); at the end every part is scored multi-view (the spec's train.views, softmax scores averaged over
the views). One loader per test part and view count serves every evaluation of the run, its workers kept.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch.utils.data import DataLoader

from composer.data.clips import ClipConfig, ClipDataset, on_device, once_per_video
from composer.data.protocols import Part, Task, harmonic_mean
from composer.errors import DataError
from composer.rundir.records import write_confusion, write_json
from composer.train.fsdp_state import before_sharding
from composer.train.loop import Settings, eval_loader, inputs
from composer.train.metrics import classification_metrics


def check_heads(model, task: Task) -> None:
    """A fixed-size classifier cannot score classes it was not trained on (base-to-novel, zero-shot)."""
    fixed = [c for c in model.graph.calls_feeding(model.graph.predict) if c.kind.fixed_classes]
    for name, part in task.tests.items():
        if fixed and part.classes != task.train.classes:
            raise DataError(f"the {task.protocol} protocol tests '{name}' on classes the model never trained on, "
                            f"but {fixed[0].component} ({fixed[0].kind.name}) has one output per training class; "
                            "use a spec that scores classes by their names (a text tower and cosine_logits)")


class Evaluator:
    """Scores `model` on `task`'s test parts. `net`: the model as training prepared it (DDP or FSDP wrapped),
    set by the run when a stage starts; until then the evaluator prepares the model itself. After `test`,
    `scores` and `indices` hold each part's rows of scores and the part's item index of each row."""

    def __init__(self, accelerator: Accelerator, spec, model, task: Task, settings: Settings, clip: ClipConfig,
                 test_clip: ClipConfig, fsdp: bool) -> None:
        self.accelerator, self.spec, self.model, self.task = accelerator, spec, model, task
        self.settings, self.clip, self.test_clip, self.fsdp = settings, clip, test_clip, fsdp
        self.net = None
        self.loaders: dict[tuple[str, ClipConfig], DataLoader] = {}
        self.scores: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # test part -> (scores, labels)
        self.indices: dict[str, list[int]] = {}

    def network(self):
        """FSDP evaluates through its sharded wrapper; otherwise the plain model (no DDP collectives)."""
        if self.net is None:
            if self.fsdp:
                before_sharding(self.model)
            self.net = self.accelerator.prepare_model(self.model, evaluation_mode=not self.fsdp)
        return self.net if self.fsdp else self.accelerator.unwrap_model(self.net)

    def loader(self, name: str, part: Part, config: ClipConfig) -> DataLoader:
        key = (name, config)
        if key not in self.loaders:
            self.loaders[key] = eval_loader(ClipDataset(part.items, config, False), self.settings, self.accelerator,
                                            config.clips * config.crops)
        return self.loaders[key]

    def epoch(self) -> tuple[str, dict[str, Any]]:
        """Single-view metrics of the main test part (one centre clip, no flip), for an epoch's record."""
        name, part = next(iter(self.task.tests.items()))
        single = replace(self.clip, clips=1, crops=1, flip=False, colour_in_worker=False)
        return name, evaluate(self.accelerator, self.network(), self.spec, self.model.graph.predict, part,
                              self.loader(name, part, single), self.settings)

    def test(self, folder: Path | None, bars=None) -> dict[str, Any]:
        """Multi-view metrics of every test part; per_class.json and confusion.json go to `folder` (the main
        process's run or eval directory; None on the others)."""
        views = [self.test_clip.clips, self.test_clip.crops]
        results: dict[str, Any] = {"protocol": self.task.protocol, "views": views, "parts": {}}
        bad: list[str] = []
        per_class = {}
        for name, part in self.task.tests.items():
            task = bars.add_task(f"test {name} ({views[0]}x{views[1]} views)", total=None, loss="-",
                                 speed="-") if bars else None
            metrics = evaluate(self.accelerator, self.network(), self.spec, self.model.graph.predict, part,
                               self.loader(name, part, self.test_clip), self.settings,
                               (lambda done, total: bars.update(task, completed=done, total=total)) if bars else None)
            bad += metrics.pop("bad")
            self.scores[name] = (metrics.pop("scores"), metrics.pop("labels"))
            self.indices[name] = metrics.pop("indices")
            per_class[name] = metrics.pop("per_class", {})
            results["parts"][name] = metrics
        if set(results["parts"]) == {"base", "novel"}:
            parts = results["parts"]
            results["harmonic_mean"] = harmonic_mean(parts["base"]["top1"], parts["novel"]["top1"])
        results["bad_videos"] = once_per_video(bad)
        if folder is not None:
            write_json(folder / "per_class.json", per_class)
            write_confusion(folder / "confusion.json",
                            {n: (p.classes, *self.scores[n]) for n, p in self.task.tests.items()})
        return results

    def close(self) -> None:
        """End the loaders' worker processes."""
        self.loaders.clear()


@torch.no_grad()
def evaluate(accelerator: Accelerator, net, spec, predict: str, part: Part, data: DataLoader, settings: Settings,
             on_batch: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Average the softmax scores of every view of each clip; metrics over the whole part, on every rank.
    `data` is an `eval_loader` over the part's clips; forwards take at most `settings.eval_batch` views.

    Each process scores its shard; the gathered scores drop the padding Accelerate adds to the last uneven
    batch, and are keyed by clip index, so a clip counts once even where bad videos shortened a batch.
    A test video that cannot be decoded is scored as wrong (metrics["failed"] counts them), never dropped."""
    net.train(False)
    dataset = data.dataset
    rows: dict[int, torch.Tensor] = {}
    bad: list[str] = []
    failed: list[int] = []
    for step, batch in enumerate(data):
        bad += batch["bad"]
        failed += batch["bad_index"]
        local = []
        if "video" in batch:
            video = on_device(batch, accelerator.device)
            b, v = video.shape[:2]
            flat = video.flatten(0, 1)
            probs = []
            for chunk in flat.split(settings.eval_batch):
                with accelerator.autocast():
                    out = net(inputs(spec, chunk, None, part.classes), outputs=[predict])
                probs.append(out[predict].float().softmax(-1))
            local = list(zip(batch["index"].tolist(), torch.cat(probs).view(b, v, -1).mean(1).cpu()))
        for index, row in accelerator.gather_for_metrics(local, use_gather_object=True):
            rows.setdefault(index, row)
        if on_batch is not None:
            on_batch(step + 1, len(data))
    if accelerator.num_processes > 1:
        bad, failed = sorted(set(gather_object(bad))), gather_object(failed)
    order = sorted(rows)
    failed = sorted(set(failed) - set(order))
    scores = torch.stack([rows[i] for i in order]) if order else torch.zeros(0, len(part.classes))
    labels = torch.tensor([dataset.items[i].label for i in order], dtype=torch.long)
    metrics = classification_metrics(scores, labels, part.classes,
                                     torch.tensor([dataset.items[i].label for i in failed], dtype=torch.long))
    metrics["bad"] = bad
    # for callers that need more than the metrics: the scored clips' dataset indices, scores and labels
    metrics["indices"], metrics["scores"], metrics["labels"] = order, scores, labels
    return metrics
