"""Datasets by name, each in its standard on-disk layout with its official split files.

A parser turns a data root into a `DatasetIndex`: class names (cleaned: "ApplyEyeMakeup" -> "apply eye
makeup"), the videos of each split with their labels, files the dataset provides for specs (`@name`),
and whether horizontal flips are label-preserving. Problems found in the index (a split line naming a
missing video, a label out of range, a malformed line) are collected with their file:line and raised
together before anything trains; `skip_missing=True` turns missing videos into a reported skip.
`composer data check` reads the same index without stopping (`strict=False`), so both list the same problems.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from composer.data.demo import FILES as DEMO_FILES
from composer.data.demo import demo_folder
from composer.errors import DataError, did_you_mean
from composer.spec.limits import MAX_CLASSES


@dataclass(frozen=True)
class Item:
    path: Path
    label: int
    source: str = ""  # file:line that listed it


@dataclass
class DatasetIndex:
    name: str
    root: Path
    classes: list[str]
    splits: dict[str, list[Item]]
    files: dict[str, Path] = field(default_factory=dict)  # descriptions, label dictionaries, answers
    flip: bool = True  # horizontal flips keep the label (not for left/right classes)
    missing: list[str] = field(default_factory=list)  # skipped with skip_missing
    problems: list[str] = field(default_factory=list)  # every index problem, missing videos included, in file order


def clean_name(name: str) -> str:
    """Folder-style class names to words: ApplyEyeMakeup -> apply eye makeup, brush_hair -> brush hair."""
    name = name.replace("_", " ").replace("-", " ")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return re.sub(r"\s+", " ", name).strip().lower()


class _Problems:
    """Index problems as `file:line: reason`, kept in file order (files in the order they were read), each once."""

    def __init__(self, skip_missing: bool) -> None:
        self.found: dict[tuple[int, int, str], tuple[str, bool]] = {}  # (file order, line, text) -> (text, missing)
        self.files: dict[str, int] = {}
        self.skip_missing = skip_missing

    def add(self, source: str, reason: str, missing: bool = False) -> None:
        file, _, where = source.rpartition(":")
        number = int(re.sub(r"\D", "", where) or 0)
        key = (self.files.setdefault(file, len(self.files)), number, reason)
        self.found.setdefault(key, (f"{source}: {reason}", missing))

    def video(self, path: Path, source: str) -> bool:
        if path.is_file():
            return True
        self.add(source, f"video not found: {path}", missing=True)
        return False

    @property
    def missing(self) -> list[str]:
        return [text for _, (text, missing) in sorted(self.found.items()) if missing]

    @property
    def lines(self) -> list[str]:
        return [text for _, (text, _) in sorted(self.found.items())]


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{what} not found: expected {path}")
    return path


def _lines(path: Path):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line.strip()


# ---------------------------------------------------------------- generic layouts
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def folder(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    """root/train/<class>/<video> and root/test/<class>/<video> (or val/ for test)."""
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    _need(root / "train", "a train/ folder of class folders")
    if test_dir is None:
        raise DataError(f"a test/ or val/ folder of class folders not found in {root}")
    folders = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    classes = [clean_name(d) for d in folders]
    splits = {}
    for split, base in (("train", root / "train"), ("test", test_dir)):
        items = []
        for label, d in enumerate(folders):
            for video in sorted((base / d).glob("*")) if (base / d).is_dir() else []:
                if video.suffix.lower() in VIDEO_SUFFIXES:
                    items.append(Item(video, label, str(video)))
        splits[split] = items
    return DatasetIndex("folder", root, classes, splits)


def _list_file(path: Path, root: Path, names: dict[str, int] | None, problems: _Problems) -> list[Item]:
    """`path label` per line (spaces or commas; a CSV header `path,label` is allowed)."""
    items = []
    for number, line in _lines(path):
        parts = next(csv.reader([line])) if "," in line else line.split()
        source = f"{path}:{number}"
        if [p.strip().lower() for p in parts[:2]] == ["path", "label"]:
            continue
        if len(parts) < 2:
            problems.add(source, f"expected 'path label', got {line!r}")
            continue
        rel, label_text = parts[0].strip(), parts[-1].strip()
        if names is not None and label_text in names:
            label = names[label_text]
        elif label_text.lstrip("-").isascii() and label_text.lstrip("-").isdigit():
            label = int(label_text)
            if label >= MAX_CLASSES:  # one class is made per number up to the largest: bound it before
                problems.add(source, f"label {label} is larger than {MAX_CLASSES - 1} (a dataset has at most "
                             f"{MAX_CLASSES} classes)")
                continue
        else:
            problems.add(source, f"label {label_text!r} is neither a class name nor a number")
            continue
        video = root / rel
        if problems.video(video, source):
            items.append(Item(video, label, source))
    return items


def listed(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    """root/train.txt and root/test.txt (or .csv) with `path label`; class names in root/classes.txt."""
    problems = _Problems(skip_missing)
    files = {s: next((root / f"{s}{ext}" for ext in (".txt", ".csv") if (root / f"{s}{ext}").exists()), None)
             for s in ("train", "test")}
    for s, f in files.items():
        if f is None:
            raise DataError(f"the {s} list not found: expected {root / (s + '.txt')} (lines: 'path label')")
    classes_file = root / "classes.txt"
    classes = [line for _, line in _lines(classes_file)] if classes_file.exists() else None
    if classes is not None and len(classes) > MAX_CLASSES:
        raise DataError(f"{classes_file} names {len(classes)} classes, more than {MAX_CLASSES}")
    names = {c: i for i, c in enumerate(classes)} if classes else None
    splits = {s: _list_file(f, root, names, problems) for s, f in files.items()}
    if classes is None:  # labels are numbers without names: name them by number
        count = 1 + max((i.label for items in splits.values() for i in items), default=-1)
        classes = [f"class {i}" for i in range(count)]
    for items in splits.values():
        for item in items:
            if not 0 <= item.label < len(classes):
                problems.add(item.source, f"label {item.label} is out of range (0-{len(classes) - 1})")
    return DatasetIndex("list", root, [clean_name(c) for c in classes], splits, missing=problems.missing,
                        problems=problems.lines)


# ---------------------------------------------------------------- named datasets
def ucf101(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    """UCF101: videos in root/UCF-101/<Class>/, splits in root/ucfTrainTestlist/ (classInd, train/testlist0N)."""
    lists = _need(root / "ucfTrainTestlist", "UCF101's split folder ucfTrainTestlist/")
    videos = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    problems = _Problems(skip_missing)
    index_file = _need(lists / "classInd.txt", "UCF101's class list")
    folders = {}
    for number, line in _lines(index_file):
        i, name = line.split()
        folders[name] = int(i) - 1
    splits: dict[str, list[Item]] = {"train": [], "test": []}
    for s, name in (("train", f"trainlist0{split}.txt"), ("test", f"testlist0{split}.txt")):
        path = _need(lists / name, f"UCF101 split {split}")
        for number, line in _lines(path):
            rel = line.split()[0]
            label = folders.get(rel.split("/")[0])
            source = f"{path}:{number}"
            if label is None:
                problems.add(source, f"class folder {rel.split('/')[0]!r} is not in classInd.txt")
            elif problems.video(videos / rel, source):
                splits[s].append(Item(videos / rel, label, source))
    classes = [clean_name(n) for n, _ in sorted(folders.items(), key=lambda kv: kv[1])]
    return DatasetIndex("ucf101", root, classes, splits, missing=problems.missing,
                        problems=problems.lines)


def hmdb51(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    """HMDB51: videos in root/videos/<class>/, splits root/testTrainMulti_7030_splits/<class>_test_splitN.txt
    (1 = train, 2 = test, 0 = unused)."""
    lists = _need(root / "testTrainMulti_7030_splits", "HMDB51's split folder testTrainMulti_7030_splits/")
    videos = root / "videos" if (root / "videos").is_dir() else root
    problems = _Problems(skip_missing)
    files = sorted(lists.glob(f"*_test_split{split}.txt"))
    if not files:
        raise DataError(f"no HMDB51 split {split} files: expected {lists}/<class>_test_split{split}.txt")
    folders = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    splits: dict[str, list[Item]] = {"train": [], "test": []}
    for label, (name, path) in enumerate(zip(folders, files)):
        for number, line in _lines(path):
            parts = line.split()
            source = f"{path}:{number}"
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                problems.add(source, f"expected 'video.avi 0|1|2', got {line!r}")
                continue
            if parts[1] == "0":
                continue
            video = videos / name / parts[0]
            if problems.video(video, source):
                splits["train" if parts[1] == "1" else "test"].append(Item(video, label, source))
    return DatasetIndex("hmdb51", root, [clean_name(n) for n in folders], splits, missing=problems.missing,
                        problems=problems.lines)


def _kinetics(root: Path, skip_missing: bool, name: str) -> DatasetIndex:
    """Kinetics: root/annotations/{train,validate}.csv (label,youtube_id,time_start,time_end,split) and videos
    root/{train,val}/[<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4."""
    problems = _Problems(skip_missing)
    rows: dict[str, list] = {}
    for s, csv_name, folder_name in (("train", "train.csv", "train"), ("test", "validate.csv", "val")):
        path = _need(root / "annotations" / csv_name, f"{name}'s {csv_name}")
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing_cols = {"label", "youtube_id", "time_start", "time_end"} - set(reader.fieldnames or [])
            if missing_cols:
                raise DataError(f"{path}: missing columns {sorted(missing_cols)}")
            rows[s] = [(number + 2, r, folder_name) for number, r in enumerate(reader)]
    classes = sorted({r["label"] for _, r, _ in rows["train"]})
    index = {c: i for i, c in enumerate(classes)}
    splits: dict[str, list[Item]] = {"train": [], "test": []}
    for s, entries in rows.items():
        path = root / "annotations" / ("train.csv" if s == "train" else "validate.csv")
        for number, r, folder_name in entries:
            source = f"{path}:{number}"
            if r["label"] not in index:
                problems.add(source, f"class {r['label']!r} does not occur in train.csv")
                continue
            stem = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
            nested = root / folder_name / r["label"] / stem
            video = nested if nested.exists() else root / folder_name / stem
            if problems.video(video, source):
                splits[s].append(Item(video, index[r["label"]], source))
    return DatasetIndex(name, root, classes, splits, missing=problems.missing,
                        problems=problems.lines)


def kinetics400(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    return _kinetics(root, skip_missing, "kinetics400")


def kinetics600(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    return _kinetics(root, skip_missing, "kinetics600")


def ssv2(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    """Something-Something v2: root/labels/{labels,train,validation}.json, videos root/20bn-something-something-v2/<id>.webm.
    Its classes are directional, so flips are off."""
    labels = json.loads(_need(root / "labels" / "labels.json", "SSv2's labels.json").read_text())
    classes_by_index = sorted(labels, key=lambda k: int(labels[k]))
    index = {c: int(labels[c]) for c in labels}
    videos = root / "20bn-something-something-v2"
    problems = _Problems(skip_missing)
    splits: dict[str, list[Item]] = {}
    for s, name in (("train", "train.json"), ("test", "validation.json")):
        path = _need(root / "labels" / name, f"SSv2's {name}")
        items = []
        for number, entry in enumerate(json.loads(path.read_text()), 1):
            template = entry.get("template", "").replace("[", "").replace("]", "")
            source = f"{path}:entry {number}"
            if template not in index:
                problems.add(source, f"template {template!r} is not in labels.json")
                continue
            video = videos / f"{entry['id']}.webm"
            if problems.video(video, source):
                items.append(Item(video, index[template], source))
        splits[s] = items
    return DatasetIndex("ssv2", root, [c.lower() for c in classes_by_index], splits, flip=False,
                        missing=problems.missing,
                        problems=problems.lines)


def diving48(root: Path, split: int, skip_missing: bool) -> DatasetIndex:
    """Diving48 (V2): root/Diving48_V2_{train,test}.json ([{vid_name, label}]), root/Diving48_vocab.json,
    videos root/rgb/<vid_name>.mp4."""
    vocab = json.loads(_need(root / "Diving48_vocab.json", "Diving48_vocab.json").read_text())
    classes = [" ".join(str(part) for part in entry).lower() for entry in vocab]
    problems = _Problems(skip_missing)
    splits: dict[str, list[Item]] = {}
    for s, name in (("train", "Diving48_V2_train.json"), ("test", "Diving48_V2_test.json")):
        path = _need(root / name, f"Diving48's {name}")
        items = []
        for number, entry in enumerate(json.loads(path.read_text()), 1):
            source = f"{path}:entry {number}"
            label = int(entry["label"])
            if not 0 <= label < len(classes):
                problems.add(source, f"label {label} is out of range (0-{len(classes) - 1})")
                continue
            video = root / "rgb" / f"{entry['vid_name']}.mp4"
            if problems.video(video, source):
                items.append(Item(video, label, source))
        splits[s] = items
    return DatasetIndex("diving48", root, classes, splits, missing=problems.missing,
                        problems=problems.lines)


def demo(root: Path | None, split: int, skip_missing: bool) -> DatasetIndex:
    """The built-in demo set (composer/data/demo.py), generated on first use into `root` or the cache: a list
    layout, one split, without flips (they would turn "move left" into "move right")."""
    root = demo_folder(root)
    index = listed(root, 1, False)
    index.name, index.flip = "demo", False
    index.files = {key: root / f"{key}.json" for key in DEMO_FILES}
    return index


DATASETS: dict[str, Callable[[Path, int, bool], DatasetIndex]] = {
    "ucf101": ucf101, "hmdb51": hmdb51, "kinetics400": kinetics400, "kinetics600": kinetics600,
    "ssv2": ssv2, "diving48": diving48, "folder": folder, "list": listed, "demo": demo,
}


def index_error(index: DatasetIndex, skip_missing: bool) -> str | None:
    """Why a run cannot start on this index (every problem, in file order), or None: any problem but missing
    videos that --skip-missing skips. `composer run` and `composer data check` both report through this."""
    fatal = len(index.problems) > len(index.missing) or (index.missing and not skip_missing)
    if not fatal:
        return None
    shown = "\n  ".join(index.problems[:20])
    more = f"\n  ... and {len(index.problems) - 20} more" if len(index.problems) > 20 else ""
    hint = "; --skip-missing skips missing videos" if index.missing and not skip_missing else ""
    return f"{len(index.problems)} problem(s) in the index of {index.name} at {index.root}\n  {shown}{more}" + \
        (f"\n(`composer data check` lists them all{hint})" if more or hint else "")


def load_dataset(name: str, root: str | Path | None, split: int = 1, skip_missing: bool = False,
                 strict: bool = True) -> DatasetIndex:
    """The index of a dataset by name (docs/data.md lists the layouts). With `strict`, index problems stop
    here (DataError listing them); without, they come back in `index.problems` (for `composer data check`)."""
    if name not in DATASETS:
        hint = did_you_mean(name, DATASETS)
        raise DataError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}" + (f" ({hint})" if hint else ""))
    if name != "demo" and root is None:
        raise DataError(f"dataset '{name}' needs --data-root (the folder that holds it)")
    if root is not None and name != "demo" and not Path(root).is_dir():
        raise DataError(f"data root not found: {root}")
    if split not in (1, 2, 3):
        raise DataError(f"split {split} does not exist (1, 2 or 3)")
    index = DATASETS[name](Path(root) if root else None, split, skip_missing)
    problem = index_error(index, skip_missing) if strict else None
    if problem:
        raise DataError(problem)
    if not index.splits.get("train") and not index.splits.get("test"):
        raise DataError(f"dataset '{name}' at {root} has no videos")
    return index
