"""Pictures of a run: learning curves and test confusion matrices, as PNG files in the run directory.

Read from what a run writes: metrics.jsonl (one object per epoch; multi-stage specs restart their
epochs at 1 per stage, so the curves use a cumulative epoch axis with the stage boundaries marked),
confusion.json (rows are true classes, columns predicted ones, one matrix per test part) and
spec.yaml (the spec's name, for titles). Matplotlib is imported only here and only when drawing, with
its Agg canvas on explicit Figure objects: no pyplot, so no global state leaks between calls and
other commands do not pay for the import.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from composer.errors import DataError

ANNOTATE_UP_TO = 15  # classes: above this, cells carry no numbers
LABEL_UP_TO = 100  # classes: above this, the axes carry no class names
FORMATS = (".png", ".svg", ".pdf")


@dataclass
class Curves:
    """One run's per-epoch series on a cumulative epoch axis (1, 2, ... across stages)."""

    name: str
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    top1: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)  # test part -> (epochs, top-1 %)
    stages: list[tuple[float, str]] = field(default_factory=list)  # (x where a stage starts, its name)


def check_run_dir(run_dir: Path) -> Path:
    """A run directory is a folder holding a run's metrics.jsonl or run.json; anything else is refused."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir} is not a directory: give a run directory (runs/<spec>-<time>)")
    if not (run_dir / "metrics.jsonl").exists() and not (run_dir / "run.json").exists():
        raise DataError(f"{run_dir} is not a run directory (no metrics.jsonl or run.json in it): give a folder "
                        "that `composer run` wrote, e.g. runs/<spec>-<time>")
    return run_dir


def has_curves(run_dir: Path) -> bool:
    """Whether the run trained for at least one epoch (a zero-shot run is tested as it is: no curves)."""
    path = Path(run_dir) / "metrics.jsonl"
    return path.exists() and any(line.strip() for line in path.read_text(encoding="utf-8").splitlines())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The epochs of metrics.jsonl in order. An epoch logged twice (a run resumed just after logging it)
    counts once, with its last record, so the axis never shows an epoch that did not happen twice."""
    path = check_run_dir(run_dir) / "metrics.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    records: dict[tuple[str, int], dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = (str(record["stage"]), int(record["epoch"]))
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{path}:{number}: not a metrics record (a JSON object with stage and epoch); "
                            "the file is damaged") from None
        records.pop(key, None)
        records[key] = record
    if not records:
        raise DataError(f"{path.parent} has no finished epoch in metrics.jsonl: nothing to plot yet")
    order = list(dict.fromkeys(stage for stage, _ in records))
    return [records[k] for k in sorted(records, key=lambda k: (order.index(k[0]), k[1]))]


def spec_name(run_dir: Path) -> str | None:
    """The `name` of the spec the run trained (spec.yaml), or None when the file is missing or unreadable."""
    try:
        data = yaml.safe_load((Path(run_dir) / "spec.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data.get("name") if isinstance(data, dict) else None


def curves(records: list[dict[str, Any]], name: str = "") -> Curves:
    """Series to draw from metrics records; test parts are the entries holding a top-1."""
    out = Curves(name)
    stage = None
    for x, record in enumerate(records, 1):
        if record["stage"] != stage:
            stage = record["stage"]
            out.stages.append((x - 0.5, str(stage)))
        out.epochs.append(x)
        out.loss.append(_number(record.get("loss")))
        for part, value in record.items():
            if isinstance(value, dict) and "top1" in value:
                xs, ys = out.top1.setdefault(part, ([], []))
                xs.append(x)
                ys.append(_number(value["top1"]))
    return out


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def read_confusion(run_dir: Path) -> dict[str, tuple[list[str], list[list[int]]]] | None:
    """part -> (class names, matrix) from confusion.json, or None when the run has none."""
    path = Path(run_dir) / "confusion.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        parts = {name: ([str(c) for c in part["classes"]], part["matrix"]) for name, part in data["parts"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DataError(f"{path}: not a confusion file ({{\"parts\": {{part: {{\"classes\": [...], "
                        "\"matrix\": [[...]]}}}}); the file is damaged") from None
    for part, (classes, matrix) in parts.items():
        if len(matrix) != len(classes) or any(len(row) != len(classes) for row in matrix):
            raise DataError(f"{path}: the matrix of '{part}' is not {len(classes)} x {len(classes)} "
                            f"(one row and one column per class)")
    return parts


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib only when a run draws its plots
    from matplotlib.figure import Figure  # lazy: matplotlib only when a run draws its plots

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    if path.suffix.lower() not in FORMATS:
        raise DataError(f"cannot write {path}: the picture's file name must end in {', '.join(FORMATS)}")
    try:
        fig.savefig(path)
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def _stage_lines(ax, c: Curves, color: str = "0.5", label_stages: bool = True) -> None:
    if len(c.stages) < 2:
        return
    for x, stage in c.stages:
        if x > 0.5:
            ax.axvline(x, color=color, linestyle=":", linewidth=1)
        if label_stages:
            ax.annotate(stage, (x, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
                        textcoords="offset points", va="top", fontsize=8, color="0.35")


def _axes(fig, epochs: int):
    """Loss and top-1 axes over epochs 1..epochs (whole numbers only, even for a one-epoch run)."""
    loss_ax, top1_ax = fig.subplots(1, 2)
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="loss")
    top1_ax.set(title="test top-1 (single view, evaluated epochs)", xlabel="epoch", ylabel="top-1 (%)")
    for ax in (loss_ax, top1_ax):
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, epochs + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True, min_n_ticks=1)
    return loss_ax, top1_ax


def curves_figure(c: Curves, title: str):
    """Training loss per epoch and single-view test top-1 per evaluated epoch, stages marked."""
    fig = _figure(11, 4.2)
    fig.suptitle(title)
    loss_ax, top1_ax = _axes(fig, len(c.epochs))
    loss_ax.plot(c.epochs, c.loss, marker="o", markersize=3, color="C0")
    for i, (part, (xs, ys)) in enumerate(c.top1.items()):
        top1_ax.plot(xs, ys, marker="o", markersize=3, color=f"C{i + 1}", label=part)
    if c.top1:
        top1_ax.legend(fontsize=8)
    else:
        top1_ax.text(0.5, 0.5, "no evaluated epoch", transform=top1_ax.transAxes, ha="center", color="0.4")
    for ax in (loss_ax, top1_ax):
        _stage_lines(ax, c, label_stages=ax is loss_ax)
    return fig


def _label_size(n: int) -> float:
    return 9 if n <= 20 else max(4, 9 - (n - 20) / 16)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def confusion_figure(matrix: list[list[int]], classes: list[str], title: str):
    """The matrix normalised per true class (each row sums to 1; rows of classes never tested stay 0).
    Numbers in the cells up to ANNOTATE_UP_TO classes, class names on the axes up to LABEL_UP_TO."""
    import numpy as np  # lazy: numpy (as matplotlib) only when drawing

    counts = np.asarray(matrix, dtype=float)
    n = len(classes)
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    named = n <= LABEL_UP_TO
    size = _label_size(n)
    labels = [_short(c) for c in classes] if named else []
    side = min(13.0, max(3.5, 0.45 * n))  # the matrix itself, in inches
    margin = (max(map(len, labels)) * size * 0.6 / 72 + 0.5) if named else 0.6  # room for the class names
    fig = _figure(side + margin + 1.6, side + margin + 1.5)  # room for the two-line title above
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    tested = counts.sum()
    correct = np.trace(counts)
    ax.set_title(f"{title}\n{int(tested)} videos, top-1 {100 * correct / max(tested, 1):.1f}%", fontsize=11)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if named:
        ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
        ax.set_yticks(range(n), labels, fontsize=size)
    else:
        ax.set_xlabel(f"predicted class (index, {n} classes)")
        ax.set_ylabel(f"true class (index, {n} classes)")
    if n <= ANNOTATE_UP_TO:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if rates[i, j] > 0.5 else "black")
    return fig


def _file_part(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", part).strip("-") or "part"


def _title(run_dir: Path) -> str:
    name = spec_name(run_dir)
    return f"{name} ({run_dir.name})" if name else run_dir.name


def draw_run(run_dir: Path, learning_curves: bool = True) -> list[Path]:
    """Write learning-curves.png (unless the run trained nothing: a zero-shot run has no epochs) and one
    confusion-<part>.png per test part (when confusion.json exists) into the run directory; return the
    paths written."""
    run_dir = Path(run_dir)
    title = _title(run_dir)
    written = []
    if learning_curves:
        written.append(_save(curves_figure(curves(read_metrics(run_dir)), title), run_dir / "learning-curves.png"))
    confusion = read_confusion(run_dir)
    if confusion:
        for part, (classes, matrix) in confusion.items():
            fig = confusion_figure(matrix, classes, f"{title}: test '{part}'")
            written.append(_save(fig, run_dir / f"confusion-{_file_part(part)}.png"))
    return written


def overlay(run_dirs: list[Path], out: Path) -> Path:
    """One figure with every run's curves, one colour per run (labelled by run directory and spec name),
    one line style per test part; each run's stage boundaries are dotted in its colour."""
    runs = [(Path(d), curves(read_metrics(Path(d)), _title(Path(d)))) for d in run_dirs]
    fig = _figure(12, 4.8)
    fig.suptitle(f"{len(runs)} run(s)")
    loss_ax, top1_ax = _axes(fig, max(len(c.epochs) for _, c in runs))
    styles = ["-", "--", "-.", ":"]
    parts = list(dict.fromkeys(p for _, c in runs for p in c.top1))
    for i, (_, c) in enumerate(runs):
        color = f"C{i % 10}"
        loss_ax.plot(c.epochs, c.loss, marker="o", markersize=3, color=color, label=c.name)
        for part, (xs, ys) in c.top1.items():
            label = c.name if len(parts) == 1 else f"{c.name}: {part}"
            top1_ax.plot(xs, ys, marker="o", markersize=3, color=color,
                         linestyle=styles[parts.index(part) % len(styles)], label=label)
        for ax in (loss_ax, top1_ax):
            _stage_lines(ax, c, color=color, label_stages=False)
    fig.legend(*top1_ax.get_legend_handles_labels() if parts else loss_ax.get_legend_handles_labels(),
               loc="outside lower center", ncol=min(3, len(runs) * max(1, len(parts))), fontsize=8)
    return _save(fig, Path(out))
