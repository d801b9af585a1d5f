"""The evaluation protocols of the papers, as data: what trains on which classes, and what is tested.

- supervised: the train split, tested on the test split with all classes;
- few-shot: K random videos per class from the train split (seeded), tested on the full test split;
- base-to-novel: train on the base half of the classes, test on base and on novel classes separately,
  and report their harmonic mean (ViFi-CLIP's protocol; base = the first half of the class list);
- zero-shot: train on one dataset, test on another dataset's videos with its class names.
Labels are remapped to the classes of each part, and class names travel with them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from composer.data.datasets import DatasetIndex, Item
from composer.errors import DataError

PROTOCOLS = ("supervised", "few-shot", "base-to-novel", "zero-shot")


@dataclass
class Part:
    items: list[Item]
    classes: list[str]


@dataclass
class Task:
    protocol: str
    train: Part
    tests: dict[str, Part] = field(default_factory=dict)  # name -> test part; the first is the main one


def _restrict(items: list[Item], keep: list[int]) -> list[Item]:
    remap = {old: new for new, old in enumerate(keep)}
    return [Item(i.path, remap[i.label], i.source) for i in items if i.label in remap]


def supervised(index: DatasetIndex) -> Task:
    return Task("supervised", Part(index.splits["train"], index.classes), {"test": Part(index.splits["test"], index.classes)})


def few_shot(index: DatasetIndex, shots: int, seed: int) -> Task:
    rng = random.Random(seed)
    by_class: dict[int, list[Item]] = {}
    for item in index.splits["train"]:
        by_class.setdefault(item.label, []).append(item)
    short = [index.classes[c] for c in range(len(index.classes)) if len(by_class.get(c, [])) < shots]
    if short:
        raise DataError(f"{len(short)} class(es) have fewer than {shots} training videos: {', '.join(short[:5])}")
    chosen = [item for c in sorted(by_class) for item in rng.sample(by_class[c], shots)]
    return Task(f"few-shot ({shots})", Part(chosen, index.classes), {"test": Part(index.splits["test"], index.classes)})


def base_to_novel(index: DatasetIndex) -> Task:
    half = (len(index.classes) + 1) // 2
    base, novel = list(range(half)), list(range(half, len(index.classes)))
    if not novel:
        raise DataError("base-to-novel needs at least two classes")
    names = lambda keep: [index.classes[i] for i in keep]  # noqa: E731
    return Task("base-to-novel", Part(_restrict(index.splits["train"], base), names(base)),
                {"base": Part(_restrict(index.splits["test"], base), names(base)),
                 "novel": Part(_restrict(index.splits["test"], novel), names(novel))})


def zero_shot(source: DatasetIndex, target: DatasetIndex) -> Task:
    return Task("zero-shot", Part(source.splits["train"], source.classes),
                {target.name: Part(target.splits["test"], target.classes)})


def make_task(protocol: str, index: DatasetIndex, shots: int | None = None, seed: int = 0,
              target: DatasetIndex | None = None) -> Task:
    if protocol == "supervised":
        return supervised(index)
    if protocol == "few-shot":
        if not shots:
            raise DataError("the few-shot protocol needs --shots K (e.g. 2, 4, 8, 16)")
        return few_shot(index, shots, seed)
    if protocol == "base-to-novel":
        return base_to_novel(index)
    if protocol == "zero-shot":
        if target is None:
            raise DataError("the zero-shot protocol needs --eval-dataset (the dataset whose classes are tested)")
        return zero_shot(index, target)
    raise DataError(f"unknown protocol '{protocol}'; known: {', '.join(PROTOCOLS)}")


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)
