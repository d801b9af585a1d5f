"""`composer predict`: the top-k classes of video files, with no dataset and no labels.

It lives at the run layer, next to `composer eval`, because it is an evaluation without labels: the
same model build (tiny backbones from the same seed), the same decoding, test-time sampling and
views (composer/data/clips.py), the same averaging of softmax scores over views (train/loop.py), so
a video gets the scores `eval` would give it.

Where the class names come from depends on the classifier:
- a text classifier (a text tower and cosine_logits: CLIP, ViCLIP, MSTA, temporal prompts) scores any
  names given with --classes: open-vocabulary classification, with or without training;
- a fixed-size classifier (linear_head) scores the classes it was trained on: their names come from the
  checkpoint, and --classes may only rename them (same count).
Checkpoints written by `composer run` carry "classes", "seed" and "size" in their metadata; predict
takes them from there, so the result never depends on an option the user has to remember.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from composer.compiler.compile import BuildOptions, compile_spec, tiny_sets
from composer.data.clips import ClipConfig, ClipDataset
from composer.data.datasets import VIDEO_SUFFIXES, Item
from composer.data.transforms import to_unit
from composer.data.video import decode_threads
from composer.errors import DataError, SpecError
from composer.rundir.recorded import checkpoint_meta, load_checkpoint, settle, settle_weights
from composer.rundir.resolve import resolve_values
from composer.spec import limits
from composer.spec.ir import ClassesInput, VideoInput
from composer.spec.load import load_spec
from composer.train.accel import AccelOptions, device_name, make_accelerator
from composer.train.loop import inputs

DEFAULT_TOP_K = 5


@dataclass
class PredictOptions:
    checkpoint: str | None = None
    classes: list[str] | None = None  # given names (--classes or --classes-file)
    top_k: int | None = None  # default: 5, or every class when there are fewer
    views: tuple[int, int] | None = None  # (clips, crops); default: the spec's train.views
    size: str | None = None  # "full" or "tiny"; default: the checkpoint's, else "full"
    seed: int | None = None  # default: the checkpoint's, else the spec's train.seed
    weights: str | None = None  # "demo" or "random"; default: the checkpoint's, else random at tiny size
    device: str | None = None  # default: the GPU when there is one
    precision: str | None = None  # default: the spec's
    batch_size: int | None = None  # videos per forward pass; default: the spec's train.batch_size
    workers: int = 0
    sets: list[str] = field(default_factory=list)
    unsets: list[str] = field(default_factory=list)


@dataclass
class Prediction:
    """One input's result: the top classes with their probabilities, or why it has none."""

    path: str
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "top_k": [{"class": c, "probability": p} for c, p in self.top]}


# ---------------------------------------------------------------- arguments


def parse_views(text: str) -> tuple[int, int]:
    """'4x3' -> (4 clips along time, 3 crops in space)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() and len(p) <= 9 for p in parts):
        raise ValueError(f"expected CLIPSxCROPS such as 4x3, got {text!r}")
    clips, crops = int(parts[0]), int(parts[1])
    if clips < 1:
        raise ValueError(f"at least one clip per video, got {text!r}")
    if crops not in (1, 3):
        raise ValueError(f"crops must be 1 (centre) or 3 (along the longer side), got {text!r}")
    too_many = limits.check_views(clips, crops)
    if too_many:
        raise ValueError(too_many)
    return clips, crops


def read_classes(names: str | None, file: str | None) -> list[str] | None:
    """Class names from --classes "a,b,c" or from a file with one name per line (blank lines and # comments
    skipped); None when neither is given. The file must be a regular file of at most
    limits.MAX_CLASSES_FILE_BYTES (checked before it is read: a FIFO or a device would block or never end),
    and either names at most limits.MAX_CLASSES classes."""
    if names is not None and file is not None:
        raise DataError("give --classes or --classes-file, not both")
    if file is not None:
        try:
            limits.check_file(Path(file), None, "--classes-file", expected="a text file with one class name per line",
                              max_bytes=limits.MAX_CLASSES_FILE_BYTES)
        except SpecError as e:
            problem = e.problems[0]
            raise DataError(problem.message + (f"; expected {problem.expected}" if problem.expected else "")) from None
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read the class names from {file}: {getattr(e, 'strerror', None) or e}") from None
        found = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        source = file
    elif names is not None:
        found = [n.strip() for n in names.split(",") if n.strip()]
        source = "--classes"
    else:
        return None
    if not found:
        raise DataError(f"{source} names no class")
    if len(found) > limits.MAX_CLASSES:
        raise DataError(f"{source} names {len(found)} classes, more than {limits.MAX_CLASSES}")
    repeated = sorted(n for n, count in Counter(found).items() if count > 1)
    if repeated:
        raise DataError(f"{source} names {', '.join(repeated)} more than once")
    return found


def find_videos(paths: list[str]) -> tuple[list[Path], list[Prediction]]:
    """The files to classify: each file given, and every video file inside each folder given (recursive,
    by extension, sorted). Paths that yield nothing come back as failed predictions."""
    videos: dict[Path, None] = {}
    failed = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                failed.append(Prediction(given, error=f"no video files in this folder "
                                                      f"(looked for {', '.join(VIDEO_SUFFIXES)}, recursively)"))
            videos.update(dict.fromkeys(found))
        elif path.is_file():
            videos[path] = None
        else:
            failed.append(Prediction(given, error="no such file or folder"))
    return list(videos), failed


# ---------------------------------------------------------------- the model


def _upstream_of_prediction(model) -> tuple[bool, list[str]]:
    """Whether the prediction reads the class names, and which fixed-size classifiers (linear_head) it goes through."""
    graph = model.graph
    reads_names = any(graph.computed_from(graph.predict, name)
                      for name, i in model.spec.inputs.items() if isinstance(i, ClassesInput))
    fixed = [c.component for c in graph.calls_feeding(graph.predict) if c.kind.fixed_classes]
    return reads_names, fixed


def _choose_classes(given: list[str] | None, stored: list[str] | None, fixed: list[str], checkpoint: str | None,
                    reads_names: bool) -> list[str]:
    if fixed and given is not None and stored is not None and len(given) != len(stored):
        raise DataError(f"{fixed[0]} (linear_head) has one output per trained class: {len(stored)} in {checkpoint} "
                        f"({', '.join(stored[:5])}{', ...' if len(stored) > 5 else ''}), but {len(given)} class names "
                        "were given; give as many, or leave --classes out to use the checkpoint's")
    classes = given if given is not None else stored
    if classes is None:
        where = f"{checkpoint} stores none" if checkpoint else "there is no --checkpoint to take them from"
        what = "any names" if reads_names and not fixed else "the names of the classes it was trained on, in order"
        raise DataError(f"no class names: give --classes \"a,b,c\" or --classes-file FILE ({what}); {where}")
    return classes


class Predictor:
    """A spec built for prediction: backbones, checkpoint, class names and views settled once, then videos in."""

    def __init__(self, spec_path: str, options: PredictOptions) -> None:
        self.notes: list[str] = []  # things the user should know (printed by the command)
        # classes the model scored exactly alike on every view seen (None: no batch scored yet)
        self.tied: set[tuple[str, ...]] | None = None
        meta = checkpoint_meta(options.checkpoint)
        ckpt = options.checkpoint or ""
        size = settle(ckpt, "size", options.size, meta.get("size")) or "full"
        tiny = size == "tiny"
        sets = tiny_sets(options.sets, tiny)  # as `composer run --size tiny` does
        self.spec = spec = load_spec(spec_path, sets, options.unsets)
        seed = settle(ckpt, "seed", options.seed, meta.get("seed"))
        self.weights = weights = settle_weights(ckpt, options.weights, meta, tiny)
        video = next((i for i in spec.inputs.values() if isinstance(i, VideoInput)), None)
        if video is None:
            raise SpecError(f"{spec_path} has no video input: there is nothing to classify videos with")

        # Settle the class names on the meta device first (no weights): a refusal costs no loading.
        named = options.classes or meta.get("classes")
        sketch = compile_spec(spec, BuildOptions(device="meta", tiny=tiny, num_classes=len(named) if named else None,
                                                 weights=weights))
        if sketch.graph.predict is None:
            raise SpecError(f"{spec_path} has no prediction: name its [B, C] scores in `predict`")
        if sketch.trainable_parts and not options.checkpoint:
            raise DataError(f"{spec_path} trains {', '.join(sorted(sketch.trainable_parts))}: without --checkpoint "
                            "they would classify with their random initial weights; give the checkpoint of a run")
        reads_names, fixed = _upstream_of_prediction(sketch)
        self.classes = _choose_classes(options.classes, meta.get("classes"), fixed, options.checkpoint, reads_names)

        # the same precedence, device and precision rules as `composer run` and `composer eval`
        settled = resolve_values(spec, seed=seed, batch_size=options.batch_size, precision=options.precision)
        self.seed = settled.seed
        self.accelerator, precision = make_accelerator(AccelOptions(options.device, settled.precision))
        self.device = device_name(self.accelerator)
        self.batch_size, self.workers = settled.batch, options.workers
        torch.manual_seed(self.seed)  # tiny backbones are generated exactly as `composer run` generated them
        self.model = compile_spec(spec, BuildOptions(device=self.device, tiny=tiny, load_weights=not tiny,
                                                     weights=weights,
                                                     num_classes=len(self.classes), precision=precision))
        if options.checkpoint:
            load_checkpoint(self.model, options.checkpoint, spec_path)
        self.model.train(False)

        clips, crops = options.views or (spec.train.views.clips, spec.train.views.crops)
        self.clip = ClipConfig(video.frames, video.size, video.window, clips, crops, flip=False,
                               threads=decode_threads(self.workers))
        self.top_k = min(options.top_k or DEFAULT_TOP_K, len(self.classes))
        if options.top_k is not None and self.top_k < options.top_k:
            self.notes.append(f"--top-k {options.top_k}: there are only {len(self.classes)} classes; showing all of them")

    @torch.no_grad()
    def predict(self, videos: list[Path]) -> Iterator[Prediction]:
        """One Prediction per video, in order, as each batch is done; unreadable videos get their reason."""
        dataset = ClipDataset([Item(v, 0) for v in videos], self.clip, train=False)
        data = DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                          num_workers=min(self.workers, len(videos)), collate_fn=_as_list)
        predict = self.model.graph.predict
        for samples in data:
            good = [s for s in samples if "video" in s]
            scores = iter(self._scores(torch.stack([s["video"] for s in good]), predict) if good else [])
            for s in samples:
                path = str(videos[s["index"]])
                if "bad" in s:
                    yield Prediction(path, error=s["bad"].removeprefix(f"{path}: "))
                else:
                    probs = next(scores)
                    top = probs.topk(self.top_k)
                    yield Prediction(path, [(self.classes[i], float(p)) for p, i in zip(top.values, top.indices)])

    def _scores(self, video: torch.Tensor, predict: str) -> torch.Tensor:
        """Softmax over the classes, averaged over the views of each video (as `composer eval` does)."""
        b, v = video.shape[:2]
        given = inputs(self.spec, to_unit(video.flatten(0, 1).to(self.device)), None, self.classes)
        with self.accelerator.autocast():
            logits = self.model(given, outputs=[predict])[predict]
        if logits.shape[-1] != len(self.classes):
            raise DataError(f"the model scores {logits.shape[-1]} classes but {len(self.classes)} class names were "
                            "given; give one name per class, in the order it was trained on")
        self._find_ties(logits)
        return logits.float().softmax(-1).view(b, v, -1).mean(1).cpu()

    def _find_ties(self, logits: torch.Tensor) -> None:
        """Keep the groups of classes whose scores were exactly equal on every view of every batch so far: no video
        tells them apart (their texts embed identically: words the tokenizer does not know, or names cut at
        its length). A later batch that scores two of them apart splits their group."""
        _, group = torch.unique(logits.detach().float().T.cpu(), dim=0, return_inverse=True)
        members: dict[int, list[str]] = {}
        for name, g in zip(self.classes, group.tolist()):
            members.setdefault(g, []).append(name)
        batch = {tuple(names) for names in members.values() if len(names) > 1}
        if self.tied is None:
            self.tied = batch
            return
        self.tied = {kept for a in self.tied for b in batch
                     if len(kept := tuple(n for n in a if n in b)) > 1}

    def ties(self) -> str | None:
        """One line on the classes no video told apart (None when every class scored differently somewhere)."""
        if not self.tied:
            return None
        groups = "; ".join(", ".join(repr(n) for n in names) for names in sorted(self.tied))
        return (f"these classes scored exactly alike on every video: {groups}. Their texts embed identically "
                "(words the tokenizer does not know, or names cut at its length), so their order among "
                "themselves is arbitrary; reword them")


def _as_list(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep each sample with its index, bad ones included (the default collate drops the index of bad ones)."""
    return samples
