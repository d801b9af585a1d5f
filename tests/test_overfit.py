"""Every shipped spec learns: trained on one fixed batch, its loss falls, it fits the batch, and every parameter
it trains moves; a spec that trains nothing stays exactly as it was.

test_contract.py takes one step per kind; this takes each shipped spec (papers, ablations, baselines) through
the run's own training path on the demo set, at tiny size on random weights: every stage in order, each with
the stage's parts set trainable (`ComposedModel.set_trainable`), its losses, its optimiser groups
(`optim.make_optimizer`) and the loop's training step (`loop.train_epoch`, one optimiser step per call), so a
defect in the groups, the stage hand-over or the step is caught, not only a dead component. The `.comp` twins
are skipped: tests/test_frontends.py proves each validates to the same IR as its YAML.

The batch: the first training clip of each of the demo's 8 classes (8 clips, distinct classes), one centred
view at 64 px as tiny runs use, 2 frames (4 for VideoMAE, whose tubelets take 2) so that the file stays within
its budget. Stated departures from each spec's own training, for speed and to make a dead parameter visible:
  - a fixed learning rate (LR, or LR_OF[spec]) with the spec's optimiser, a constant schedule (no warm-up);
  - weight decay 0: AdamW's decay moves a parameter that gets no gradient, which would hide a dead one.
Before training, each spec's batch passes the run's pre-flight check (composer/train/preflight.py: a finite loss,
logits not saturated): the shipped specs pass it on random weights. Criteria, per stage: its loss falls to at most RATIO x its first value; every parameter it trains moves, and
nothing else does. In the last stage (the one that trains the prediction) the batch's training accuracy (the
forward of each step, before its update) reaches 100% within the stage's steps (STEPS, or STEPS_OF[spec]); a
stage stops as soon as it meets its criteria. Budget: the whole file in under 3 minutes on 2 idle cores (the
demo set's generation aside, which the suite shares); per-spec timings are printed with -s.

Planted defects (a detached component, an optimiser group with learning rate 0) show that the check fails and
names the parameters that did not move.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import torch
from conftest import SPECS

from composer.compiler.compile import BuildOptions, compile_spec
from composer.data.clips import ClipConfig, ClipDataset, collate, on_device
from composer.data.datasets import load_dataset
from composer.data.demo import CLASSES as CLASS_NAMES
from composer.data.protocols import Part
from composer.rundir.resolve import resolve
from composer.rundir.run_options import RunOptions
from composer.spec.ir import LabelInput
from composer.spec.load import load_spec
from composer.train import optim
from composer.train.accel import AccelOptions, make_accelerator
from composer.train.loop import Settings, TrainLoader, inputs, train_epoch
from composer.train.preflight import check_first_batch
from composer.train.run import Run

YAML = [p for p in SPECS if p.suffix != ".comp"]  # .comp twins: the same IR as their YAML (test_frontends.py)
CLASSES, SIZE = len(CLASS_NAMES), 64
LR, STEPS, RATIO = 3e-3, 40, 0.3
LR_OF = {"clip-adapter": 1e-2,  # at 3e-3 it reaches 75% in 40 steps
         "viclip-full-finetune": 1e-4,  # every ViCLIP weight trains (the spec's own lr is 2e-6): 3e-3 collapses it
         "dinov2-clip-dora": 1e-3, "dinov2-clip-prompts": 1e-3}  # at 3e-3 the first steps overshoot (loss 2.7 -> 4.0)
STEPS_OF = {"dinov2-clip-prompts": 80}  # prompts in every DINOv2 block: 87.5% at step 40 (loss 2.53 -> 0.60)
SHORT = 8  # steps for a spec marked below: enough to show it still fails, and the slowest of them cost little
# The specs that do not fit the batch within the budget, each with the reason. They run SHORT steps; a spec that
# starts to fit fails here (strict) until its mark is removed.
SLOW = ("temporal prompts learn order but do not fit one batch in 40 steps at 2 frames (loss 4.35 -> 2.27, best 75%); "
        "at 8 frames and lr 1e-3 they fit 88% in 30 steps (docs/reproduction.md): too slow for the suite's budget")
DOES_NOT_LEARN = {
    **{name: SLOW for name in (
        "temporal-prompts-dual-text", "temporal-prompts-dual-text-16f", "temporal-prompts-c3d",
        "temporal-prompts-lstm", "temporal-prompts-mlp", "temporal-prompts-no-residual", "temporal-prompts-r2plus1d",
        "temporal-prompts-tada", "temporal-prompts-transformer")},
}
# Parameters a spec trains that no flow step reads, each named with the reason (the rest of the spec is checked):
# - ViCLIP's own logit temperature: the spec's cosine_logits has its own scale, yet a full fine-tune marks it trainable;
# - MSTA's temporal convolution in ViCLIP's last visual block updates patch tokens only, and the tower's output reads
#   the class token alone, so that convolution's weight and bias never get a gradient (found by this test).
MSTA_LAST_TEMPORAL = frozenset({"components.msta.viclip_visual.12.temporal.weight",
                                "components.msta.viclip_visual.12.temporal.bias"})
NEVER_READ = {"viclip-full-finetune": frozenset({"backbones.viclip.model.temp"}),
              **{name: MSTA_LAST_TEMPORAL for name in (
                  "msta", "msta-few-shot", "msta-no-consistency", "msta-no-shared", "msta-video-only")}}


def frames_of(spec) -> int:
    return 4 if any(b.family == "videomae" for b in spec.backbones.values()) else 2


def load_small(path):
    """The spec at the test's size: 2 frames (4 for VideoMAE), 64 px, no weight decay."""
    spec = load_spec(path)
    return load_spec(path, sets=[f"inputs.video.frames={frames_of(spec)}", f"inputs.video.size={SIZE}",
                                 "train.weight_decay=0"])


@pytest.fixture(scope="module")
def demo(demo_root):
    """The demo's index and its first training clip of each class."""
    index = load_dataset("demo", demo_root)
    first: dict[int, object] = {}
    for item in index.splits["train"]:
        first.setdefault(item.label, item)
    return index, [first[c] for c in range(CLASSES)]


class OneBatch(torch.utils.data.Dataset):
    """The same clips in every epoch (the loop's sampler only reorders them)."""

    collate = staticmethod(collate)

    def __init__(self, video: torch.Tensor, labels: list[int]) -> None:
        self.video, self.labels = video, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        _, i = key
        return {"video": self.video[i], "label": self.labels[i], "index": i}


def batch_for(spec, items) -> OneBatch:
    video = spec.video_input()
    config = ClipConfig(video.frames, video.size, video.window, flip=False)
    clips = ClipDataset(items, config, train=False)
    return OneBatch(torch.stack([clips[i]["video"][0] for i in range(len(items))]), [i.label for i in items])


@dataclass
class StageFit:
    name: str
    last: bool  # the stage that trains the prediction: it must also fit the batch
    losses: list[float] = field(default_factory=list)  # the loss of each step's forward, before its update
    accuracy: list[float] = field(default_factory=list)
    unmoved: list[str] = field(default_factory=list)  # trained parameters equal to their start
    frozen_moved: list[str] = field(default_factory=list)  # parameters not trained that changed anyway
    spread: float = 0.0  # the first forward's logits: mean over clips of (max - min)
    seconds: float = 0.0


def meets(stage: StageFit) -> bool:
    return len(stage.losses) > 1 and stage.losses[-1] <= RATIO * stage.losses[0] and \
        (not stage.last or stage.accuracy[-1] == 1.0)


def fit(path, items, files, steps: int, lr: float) -> tuple[object, list[StageFit]]:
    """Train every stage of the spec on the batch of `items` as composer run does; the model and each stage's record."""
    spec = load_small(path)
    data = batch_for(spec, items)
    torch.manual_seed(0)
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=CLASSES))
    model.use_dataset_files(files)
    accelerator, _ = make_accelerator(AccelOptions("cpu", "fp32"))
    settings = Settings(batch_size=len(data), workers=0, grad_clip=spec.train.grad_clip)
    loader = TrainLoader(data, settings, accelerator, seed=0)
    part = Part([], CLASS_NAMES)
    label = next(n for n, i in spec.inputs.items() if isinstance(i, LabelInput))
    predict = model.graph.predict
    batch = collate([data[(0, i)] for i in range(len(data))])
    check_first_batch(model, inputs(spec, on_device(batch, "cpu"), batch["label"], CLASS_NAMES))  # the run's pre-flight
    run = SimpleNamespace(spec=spec, model=model, resolved=resolve(spec, RunOptions(dataset="demo", lr=lr)))
    stages = list(spec.stages.items()) if spec.stages else [("train", None)]
    out = []
    for index, (name, stage) in enumerate(stages):
        plan = Run._plan(run, index, name, stage)  # the run's own stage plan: its parts, losses and lr
        model.set_trainable(plan.parts)
        optimizer = optim.make_optimizer(model, spec.train, plan.lr, model.trainable_parts)
        scheduler = optim.make_schedule(optimizer, "constant", 0, steps)
        net, prepared = accelerator.prepare(model, optimizer)
        record = StageFit(name, last=index == len(stages) - 1)

        def forward(given, outputs, losses, record=record):
            result = net(given, outputs=[*outputs, predict], losses=losses)
            logits = result[predict].detach()
            if not record.losses:
                record.spread = (logits.max(-1).values - logits.min(-1).values).mean().item()
            record.losses.append(result["loss"].item())
            record.accuracy.append((logits.argmax(-1) == given[label]).float().mean().item())
            return result

        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        start = time.perf_counter()
        net.train()
        for step in range(steps):
            train_epoch(accelerator, net, spec, part, loader, prepared, scheduler, plan.losses, settings, epoch=step,
                        forward=forward)
            if meets(record):
                break
        record.seconds = time.perf_counter() - start
        trained = {n for n, p in model.named_parameters() if p.requires_grad}
        for n, p in model.named_parameters():
            if torch.equal(p.detach(), before[n]) == (n in trained):
                (record.unmoved if n in trained else record.frozen_moved).append(n)
        out.append(record)
    return model, out


def problems(stages: list[StageFit], steps: int, never_read: frozenset[str] = frozenset()) -> list[str]:
    """What the criteria find wrong, one line each (empty: the spec learns). `never_read`: trained parameters that
    no flow step reads; they must stay, and only they may."""
    found = []
    for s in stages:
        losses = f"loss {s.losses[0]:.3f} -> {s.losses[-1]:.3f} in {len(s.losses)} steps"
        if not s.losses[-1] <= RATIO * s.losses[0]:
            found.append(f"stage {s.name}: the loss did not fall below {RATIO} x its start ({losses})")
        if s.last and s.accuracy[-1] < 1.0:
            found.append(f"stage {s.name}: training accuracy {max(s.accuracy):.3f} at best, not 1 within {steps} "
                         f"steps ({losses})")
        unmoved = [n for n in s.unmoved if n not in never_read]
        if unmoved:
            found.append(f"stage {s.name}: {len(unmoved)} trained parameter(s) did not move: {', '.join(unmoved)}")
        if never_read - set(s.unmoved):
            found.append(f"stage {s.name}: {', '.join(sorted(never_read - set(s.unmoved)))} moved, though no flow "
                         "step reads it")
        if s.frozen_moved:
            found.append(f"stage {s.name}: parameter(s) it does not train changed: {', '.join(s.frozen_moved)}")
    return found


def describe(spec_name: str, stages: list[StageFit]) -> str:
    return "; ".join(f"{spec_name}/{s.name}: {s.seconds:.1f}s, {len(s.losses)} steps, loss {s.losses[0]:.3f} -> "
                     f"{s.losses[-1]:.3f}, accuracy {s.accuracy[0]:.3f} -> {s.accuracy[-1]:.3f}, logit spread at "
                     f"start {s.spread:.3g}" for s in stages)


@pytest.fixture(scope="module")
def files(demo):
    """The per-class files the demo provides (descriptions, Chinese labels, FTP answers)."""
    return demo[0].files


def _cases():
    out = []
    for path in YAML:
        name = load_spec(path).name
        marks = [pytest.mark.xfail(strict=True, reason=DOES_NOT_LEARN[name])] if name in DOES_NOT_LEARN else []
        out.append(pytest.param(path, id=path.name, marks=marks))
    return out


@pytest.mark.parametrize("path", _cases())
def test_every_spec_learns_one_batch(path, demo, files, capsys):
    _, items = demo
    spec = load_small(path)
    steps = SHORT if spec.name in DOES_NOT_LEARN else STEPS_OF.get(spec.name, STEPS)
    start = time.perf_counter()
    if not compile_spec(spec, BuildOptions(device="meta", tiny=True, num_classes=CLASSES)).trainable_parts:
        return _stays_unchanged(path, items, files)
    model, stages = fit(path, items, files, steps, LR_OF.get(spec.name, LR))
    with capsys.disabled():
        print(f"\n{describe(spec.name, stages)} (total {time.perf_counter() - start:.1f}s)")
    found = problems(stages, steps, NEVER_READ.get(spec.name, frozenset()))
    assert not found, f"{spec.name} does not learn:\n" + "\n".join(found)


def _stays_unchanged(path, items, files) -> None:
    """A spec that trains nothing: nothing to optimise, no parameter asks for a gradient, and its training-mode
    forwards leave every tensor and the scores as they were."""
    spec = load_small(path)
    data = batch_for(spec, items)
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=CLASSES))
    model.use_dataset_files(files)
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="nothing to optimise"):
        optim.make_optimizer(model, spec.train, LR, model.trainable_parts)
    batch = collate([data[(0, i)] for i in range(len(data))])
    given = inputs(spec, on_device(batch, "cpu"), batch["label"], CLASS_NAMES)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    first = model(given, outputs=[model.graph.predict])[model.graph.predict]
    for _ in range(2):
        again = model(given, outputs=[model.graph.predict])[model.graph.predict]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(first, again)


# -- planted defects: the check fails on them, naming the parameters that did not move

PLANTED = "specs/baselines/clip-temporal-transformer.yaml"  # two trained parts: a head and a temporal transformer


def test_a_detached_component_fails_the_check_by_name(demo, files, monkeypatch):
    """The temporal transformer's output cut from the graph: the head alone may still fit the batch, but none of
    the transformer's parameters moves, and the check names each of them."""
    from composer.components.fusion.temporal_transformer_module import TemporalTransformer

    original = TemporalTransformer.forward
    monkeypatch.setattr(TemporalTransformer, "forward", lambda self, x: original(self, x).detach())
    model, stages = fit(PLANTED, demo[1], files, 4, LR)
    temporal = {n for n, _ in model.named_parameters() if n.startswith("components.temporal.")}
    assert temporal and set(stages[0].unmoved) == temporal
    dead = [line for line in problems(stages, 4) if "did not move" in line]
    assert len(dead) == 1 and all(n in dead[0] for n in temporal), dead


def test_a_zero_learning_rate_group_fails_the_check_by_name(demo, files, monkeypatch):
    """The head's weight matrix (its decay group) at learning rate 0: that matrix alone stays, and is named."""
    original = optim.param_groups

    def one_group_stopped(*args, **kwargs):
        groups = original(*args, **kwargs)
        for g in groups:
            if g["name"] == "head":  # the decay group: the weight matrix, not the bias
                g["lr"] = 0.0
        return groups

    monkeypatch.setattr(optim, "param_groups", one_group_stopped)
    _, stages = fit(PLANTED, demo[1], files, 4, LR)
    assert stages[0].unmoved == ["components.head.fc.weight"]
    assert "did not move: components.head.fc.weight" in "\n".join(problems(stages, 4))
