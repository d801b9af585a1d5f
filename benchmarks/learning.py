"""Does the temporal machinery learn time? Every paper spec and the baselines, trained on the demo set,
whose 8 classes are 4 pairs of the same clips played backwards, for each seed and each weights kind.

Every spec runs at tiny size (64 px clips, 8 frames; 16 for the 16-frame variant) on the CPU with the
same budget: the same epochs, batch 8, one test view. Per run:
    train top-1      the training split scored once at the end, one un-augmented view
    test top-1       over the 8 classes (chance 12.5%)
    pair accuracy    for each test clip, whether its class scores above its reversed twin (chance 50%):
                     a model blind to frame order cannot beat chance here
    before training  the spec's model at initialisation scored on the test split (specs that score class
                     names; a linear head has nothing to score before it trains)
    base-to-novel    a second run on the base half of the classes, tested on base and novel classes
                     (harmonic mean), for the rows that say so
Weights: `demo` (tiny pretrained backbones, RunOptions.weights = "demo") and `random`. learning.json keeps
every run with its settings; a run already there with the same settings is not run again, so the table
can be filled in parts (--only, --weights). Writes benchmarks/learning.md and benchmarks/learning.json.
Usage:
    .venv/bin/python benchmarks/learning.py [--epochs 2] [--seeds 0 1 2] [--random-seeds 0]
                                            [--weights demo random] [--only NAME ...] [--into DIR]
The default (3 seeds on demo weights, 1 on random weights, 2 epochs, every row but the 16-frame variant)
was sized to about 47 minutes on 2 idle cores (about 36 with --epochs 1; each added epoch about 12): estimates
from one-epoch runs on a shared machine (load 2-12) scaled by its load, so +-30%. Each run's wall and CPU
seconds land in learning.json and the table. The committed table (10 epochs, 3 seeds on both kinds of
weights, every row but the 16-frame variant) is 114 runs and 114 minutes of wall time summed over the
runs, made as two processes side by side on 2 cores (the commands it lists; the random rows of the
frame mean, zero-shot, temporal transformer and TDS-CLIP come from an earlier session's runs with the
same settings).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

import torch
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from composer.backbones.demo_weights import NoDemoWeights, demo_file  # noqa: E402
from composer.backbones.registry import check_size, get_family  # noqa: E402
from composer.data.clips import ClipConfig, ClipDataset  # noqa: E402
from composer.data.demo import PAIRS, VERSION  # noqa: E402
from composer.errors import DataError, SpecError  # noqa: E402
from composer.spec.load import load_spec  # noqa: E402
from composer.train.evaluator import evaluate  # noqa: E402
from composer.train.loop import eval_loader  # noqa: E402
from composer.train.run import Run, RunOptions  # noqa: E402

BATCH = 8
ALPHA = 0.01  # one-sided level of the binomial test of pair accuracy, per seed
SE_RULE = 3.0  # standard errors a top-1 difference must exceed to count as a difference


@dataclass(frozen=True)
class Row:
    name: str
    spec: str
    note: str = ""
    sets: tuple[str, ...] = ()
    lr: float | None = None  # None: the spec's own (a different one needs its reason in the note)
    base_to_novel: bool = False  # also run the base-to-novel protocol (the spec scores class names)
    default: bool = True  # False: only when --only names it (too slow for the default budget)


FRAME_MEAN = "frame mean (CLIP linear probe)"
DINO_NOTE = ("video from DINOv2, whose demo weights learnt a two-frame contrastive stand-in and motion classifiers "
             "of the frame mean with the curriculum (linear probe on the demo 35.2; docs/demo-weights.md)")
ROWS = [
    Row(FRAME_MEAN, "specs/baselines/clip-linear-probe.yaml", "order-blind by construction: the reference"),
    Row("CLIP zero-shot", "specs/baselines/clip-zero-shot.yaml", "nothing trains; frame mean against class names",
        base_to_novel=True),
    Row("ViCLIP zero-shot", "specs/baselines/viclip-zero-shot.yaml", "nothing trains", base_to_novel=True),
    Row("temporal transformer", "specs/baselines/clip-temporal-transformer.yaml"),
    Row("plain adapter (AdaptFormer) at MSTA's layers", "specs/baselines/viclip-adaptformer.yaml",
        "bottleneck 256 parallel to the MLP of blocks 1-12 of both ViCLIP towers, as shipped", base_to_novel=True),
    Row("MSTA", "specs/papers/msta.yaml", "adapter scale 0.005 (the paper's)", base_to_novel=True),
    Row("MSTA without consistency loss", "specs/papers/msta-no-consistency.yaml", base_to_novel=True),
    Row("MSTA few-shot setting", "specs/papers/msta-few-shot.yaml",
        "r=128 at layers 8-12; trained on the full train split like every row"),
    Row("TDS-CLIP, side width 64", "specs/papers/tds-clip.yaml",
        "side width 64 instead of the paper's 320 to fit the budget (0.57 against 5.7 GFLOPs per tiny clip); "
        "it still decodes 5 frames per segment", sets=("components.side.params.dim=64",)),
    Row("temporal prompts + dual text", "specs/papers/temporal-prompts-dual-text.yaml",
        "the paper's lr 5e-6 is for 30 epochs of batch 32: a short run barely moves the prompts (an earlier "
        "version of this table reached 68% pair accuracy at lr 1e-3 in 20 epochs)"),
    Row("temporal prompts + dual text, lr 1e-3", "specs/papers/temporal-prompts-dual-text.yaml",
        "lr 1e-3 instead of the paper's 5e-6: whether the prompts can learn time at all in a 10-epoch run "
        "(--only it; not in the default budget)", lr=1e-3, default=False),
    Row("temporal prompts + dual text, 16 frames", "specs/papers/temporal-prompts-dual-text-16f.yaml",
        "not in the default budget (--only 16): 3 times the 8-frame model's FLOPs (1.6 times its wall time "
        "measured), and it varies the frame count, not whether time is learned", default=False),
    Row("FTP", "specs/papers/ftp.yaml", "two stages, each --epochs long; on VideoMAE, whose demo weights learnt masked "
        "reconstruction and motion classifiers with the curriculum (linear probe on the demo 83.6; "
        "docs/demo-weights.md)"),
    Row("DINOv2 + CLIP, DoRA", "specs/papers/dinov2-clip-dora.yaml", DINO_NOTE),
    Row("DINOv2 + CLIP, prompts", "specs/papers/dinov2-clip-prompts.yaml", DINO_NOTE),
]


# -- the statistics (unit-tested in tests/test_learning_bench.py)
def pair_hits(scores: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> torch.Tensor:
    """Per clip whose class has a reversed twin among `classes`: does its class score above the twin?"""
    twin = {a: b for a, b in PAIRS} | {b: a for a, b in PAIRS}
    index = {name: i for i, name in enumerate(classes)}
    rows = [r for r, label in enumerate(labels.tolist()) if twin.get(classes[label]) in index]
    if not rows:
        return torch.zeros(0, dtype=torch.bool)
    own = labels[rows]
    other = torch.tensor([index[twin[classes[label]]] for label in own.tolist()])
    picked = scores[rows]
    return picked.gather(1, own[:, None])[:, 0] > picked.gather(1, other[:, None])[:, 0]


def binomial_p(successes: int, trials: int, p: float = 0.5) -> float:
    """One-sided exact binomial test: P(X >= successes) for X ~ Binomial(trials, p)."""
    return sum(math.comb(trials, k) * p ** k * (1 - p) ** (trials - k) for k in range(successes, trials + 1))


def pair_verdict(runs: list[dict]) -> str:
    """Pair accuracy above chance (one-sided binomial, ALPHA) in every seed, in none, or in some."""
    hits = sum(binomial_p(r["pair_hits"], r["pair_n"]) < ALPHA for r in runs)
    if hits == len(runs):
        return f"tells pairs apart (p<{ALPHA:g} in {hits}/{len(runs)} seeds)"
    if hits == 0:
        return f"pairs not told apart (p<{ALPHA:g} in 0/{len(runs)} seeds)"
    return f"inconsistent (p<{ALPHA:g} in {hits}/{len(runs)} seeds)"


def standard_error(values: list[float], clips: int) -> float:
    """Standard error of a mean of accuracies (%) over seeds: the sample variance over seeds, floored at the
    binomial variance of one accuracy over `clips` clips (two seeds that agree by chance do not make a
    difference look certain)."""
    mean = statistics.mean(values)
    binomial = mean * (100 - mean) / clips
    spread = statistics.variance(values) if len(values) > 1 else 0.0
    return math.sqrt(max(spread, binomial) / len(values))


def compare(values: list[float], reference: list[float], clips: int) -> tuple[float, float, str]:
    """Difference of mean test top-1 against the reference, in points and in pooled standard errors."""
    diff = statistics.mean(values) - statistics.mean(reference)
    se = math.sqrt(standard_error(values, clips) ** 2 + standard_error(reference, clips) ** 2)
    z = diff / se if se else math.inf
    word = "above" if z > SE_RULE else "below" if z < -SE_RULE else "level with"
    return diff, z, word


# -- running
def fail(message: str) -> NoReturn:
    """Stop with one line saying what is wrong and what to do (exit status 2, as composer's command line)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def weights_option(kind: str) -> dict[str, str]:
    """RunOptions keyword for the weights kind; random weights pass nothing (the default)."""
    if kind == "random":
        return {}
    if "weights" not in {f.name for f in fields(RunOptions)}:
        fail(f"--weights {kind} needs RunOptions.weights (the tiny pretrained demo weights), which "
             "this checkout lacks; run with --weights random or merge the demo weights first")
    return {"weights": kind}


def schedule_sets(spec_path: str, epochs: int) -> tuple[list[str], str]:
    """Warm-up scaled to the same fraction of the shortened schedule as in the spec (a 5-epoch warm-up in a
    3-epoch run would never reach the learning rate), and a note saying so."""
    spec = load_spec(ROOT / spec_path)
    train = spec.train
    # a staged spec's stages share the warm-up: scale it to the shortest stage
    full = min((s.epochs for s in spec.stages.values() if s.epochs), default=train.epochs)
    if not train.warmup_epochs:
        return [], ""
    warmup = round(train.warmup_epochs * epochs / full, 3)
    return [f"train.warmup_epochs={warmup}"], f"warm-up {warmup:g} of {epochs} epochs (spec: {train.warmup_epochs:g} of {full})"


def _single_view(run: Run) -> ClipConfig:
    clip = run.clip
    return ClipConfig(clip.frames, clip.size, clip.window, flip=False, device=clip.device, threads=clip.threads,
                      short=clip.short)


def _score(run: Run, part) -> dict[str, Any]:
    """One un-augmented view of every clip of `part`, through the model as it is now."""
    loader = eval_loader(ClipDataset(part.items, _single_view(run), False), run.settings, run.accelerator, 1)
    return evaluate(run.accelerator, run.model, run.spec, run.model.graph.predict, part, loader, run.settings)


def _scores_names(run: Run) -> bool:
    """Whether the prediction scores classes by name (no fixed-size head feeds it)."""
    return not any(c.kind.fixed_classes for c in run.model.graph.calls_feeding(run.model.graph.predict))


def _options(weights: str, protocol: str, seed: int, epochs: int, lr: float | None, sets: list[str],
             out: str) -> RunOptions:
    """Batch 8 for every spec (24 steps an epoch), one test view, and the test split scored per epoch only at
    the end of each stage (the score is not used before then, and scoring costs as much as training here)."""
    return RunOptions(dataset="demo", protocol=protocol, tiny=True, epochs=epochs, lr=lr, batch_size=BATCH, workers=1,
                      seed=seed, out=out, eval_every=epochs + 1, sets=sets + ["train.views={clips: 1, crops: 1}"],
                      **weights_option(weights))


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the loader workers): on a shared machine the
    wall time says as much about the neighbours as about the run."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(row: Row, weights: str, seed: int, epochs: int, out: str) -> dict[str, Any]:
    """One supervised run: the model before training, training, then the test and training splits."""
    sets, _ = schedule_sets(row.spec, epochs)
    start, cpu = time.perf_counter(), _cpu_seconds()
    run = Run(str(ROOT / row.spec), _options(weights, "supervised", seed, epochs, row.lr, [*row.sets, *sets], out),
              console=Console(quiet=True))
    test = run.task.tests["test"]
    record: dict[str, Any] = {"seed": seed, "run_dir": str(run.dir), "trains": bool(run.model.trainable_parts)}
    if _scores_names(run):
        with torch.random.fork_rng(devices=[]):  # scoring first must not change what training draws
            before = _score(run, test)
        record["before_top1"] = before["top1"]
    if record["trains"]:
        summary = run.fit()
        record["epoch_seconds"] = [json.loads(line)["seconds"] for line in (run.dir / "metrics.jsonl").open()]
    else:  # a zero-shot spec: nothing to train, the test is all there is
        summary = run.test()
    scores, labels = run.evaluator.scores["test"]
    hits = pair_hits(scores, labels, test.classes)
    record |= {"top1": summary["parts"]["test"]["top1"], "pair": 100.0 * hits.float().mean().item(),
               "pair_hits": int(hits.sum()), "pair_n": len(hits), "test_n": len(labels),
               "train_top1": _score(run, run.task.train)["top1"]}
    run.finish()
    return record | {"seconds": time.perf_counter() - start, "cpu_seconds": _cpu_seconds() - cpu,
                     "load": os.getloadavg()[0]}


def measure_base_to_novel(row: Row, weights: str, seed: int, epochs: int, out: str) -> dict[str, Any]:
    sets, _ = schedule_sets(row.spec, epochs)
    start, cpu = time.perf_counter(), _cpu_seconds()
    run = Run(str(ROOT / row.spec), _options(weights, "base-to-novel", seed, epochs, row.lr, [*row.sets, *sets], out),
              console=Console(quiet=True))
    summary = run.fit() if run.model.trainable_parts else run.test()
    run.finish()
    return {"seed": seed, "run_dir": str(run.dir), "base": summary["parts"]["base"]["top1"],
            "novel": summary["parts"]["novel"]["top1"], "harmonic_mean": summary["harmonic_mean"],
            "seconds": time.perf_counter() - start, "cpu_seconds": _cpu_seconds() - cpu, "load": os.getloadavg()[0]}


def demo_files(row: Row) -> dict[str, str | None]:
    """The SHA-256 of the demo file of each backbone family `row`'s spec uses (None where there is none: the
    run is then refused): what its demo-weights runs load, so that pretraining one family's demo weights
    again makes only the rows that read that family's file run again."""
    spec = load_spec(ROOT / row.spec, row.sets)
    out: dict[str, str | None] = {}
    for b in spec.backbones.values():
        try:
            out[b.family] = demo_file(b.family, check_size(get_family(b.family), b.size))[1]["sha256"]
        except NoDemoWeights:
            out[b.family] = None
    return dict(sorted(out.items()))


def settings(row: Row, epochs: int, weights: str) -> dict[str, Any]:
    """What makes two runs of a row the same run: a stored run with other settings is run again, and so
    is a demo-weights run made with other demo files of the row's own backbones (their hashes)."""
    sets, _ = schedule_sets(row.spec, epochs)
    same = {"spec": row.spec, "epochs": epochs, "batch_size": BATCH, "lr": row.lr, "sets": [*row.sets, *sets],
            "views": [1, 1], "demo_set": VERSION}
    return same | {"demo_files": demo_files(row)} if weights == "demo" else same


def selects(only: str, row: Row) -> bool:
    """Whether an --only item names `row`: a row's whole name selects that row alone (one name can be
    part of another: "temporal prompts + dual text" and its 16-frame variant), anything else every row
    whose name contains it (case-insensitive)."""
    exact = [r for r in ROWS if r.name.lower() == only.lower()]
    return row in exact if exact else only.lower() in row.name.lower()


def key(weights: str, protocol: str, row: Row, seed: int) -> str:
    return f"{weights}|{protocol}|{row.name}|{seed}"


# -- the table
def _cell(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _runs(results: dict, weights: str, protocol: str, row: Row, seeds: list[int], epochs: int) -> list[dict]:
    want = settings(row, epochs, weights)
    found = [results["runs"].get(key(weights, protocol, row, seed)) for seed in seeds]
    return [r for r in found if r and r["settings"] == want]


def _verdict(runs: list[dict], reference: list[dict]) -> str:
    """`reference`: the frame-mean runs to compare test top-1 with (empty for the frame mean itself)."""
    parts = [pair_verdict(runs)]
    if reference:
        diff, z, word = compare([r["top1"] for r in runs], [r["top1"] for r in reference], runs[0]["test_n"])
        parts.append(f"test top-1 {word} the frame mean ({diff:+.1f} points, {z:+.1f} SE)")
    return "; ".join(parts)


def table(results: dict, weights: str, seeds: list[int], epochs: int) -> list[str]:
    lines = ["| model | spec | lr | seeds | train top-1 | test top-1 (chance 12.5) | pair accuracy (chance 50) | "
             "before training (test top-1) | base-to-novel HM (base / novel) | seconds per run, wall (CPU) | verdict | "
             "note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    frame_mean = next(r for r in ROWS if r.name == FRAME_MEAN)
    reference = _runs(results, weights, "supervised", frame_mean, seeds, epochs)
    for row in ROWS:
        runs = _runs(results, weights, "supervised", row, seeds, epochs)
        _, warm = schedule_sets(row.spec, epochs)
        note = "; ".join(n for n in (row.note, warm) if n)
        lr = f"{row.lr:g}" if row.lr else f"{load_spec(ROOT / row.spec).train.lr:g}"
        if not runs:
            lines.append(f"| {row.name} | `{row.spec}` | {lr} | — | not run | | | | | | | {note} |")
            continue
        b2n = _runs(results, weights, "base-to-novel", row, seeds, epochs)
        hm = (f"{_cell([r['harmonic_mean'] for r in b2n])} ({_cell([r['base'] for r in b2n])} / "
              f"{_cell([r['novel'] for r in b2n])}), {len(b2n)} seed(s)" if b2n else "—")
        before = [r["before_top1"] for r in runs if "before_top1" in r]
        trained = runs[0]["trains"]
        seconds = statistics.mean(r["seconds"] for r in runs + b2n)
        cpu = statistics.mean(r["cpu_seconds"] for r in runs + b2n)
        lines.append(
            f"| {row.name} | `{row.spec}` | {lr if trained else '—'} | {' '.join(str(r['seed']) for r in runs)} | "
            f"{_cell([r['train_top1'] for r in runs])} | {_cell([r['top1'] for r in runs])} | "
            f"{_cell([r['pair'] for r in runs])} | {_cell(before)} | {hm} | {seconds:.0f} ({cpu:.0f}) | "
            f"{_verdict(runs, reference if row is not frame_mean else [])} | {note} |")
    return lines


def demo_sets(results: dict) -> str:
    """The demo set versions the table's runs were made on (runs from before versions were recorded: demo-v4)."""
    made = sorted({r.get("settings", {}).get("demo_set", "demo-v4") for r in results["runs"].values()})
    return ", ".join(made) + (" (demo-v4 was lossy H.264, whose files differed from machine to machine; a run "
                              f"made now uses {VERSION} and gives other figures)" if made != [VERSION] else "")


def write(results: dict, args: argparse.Namespace) -> None:
    loads = [r["load"] for r in results["runs"].values() if "load" in r]
    lines = ["# Learning time on the demo set", "",
             f"Regenerated by {', '.join(f'`{c}`' for c in results['commands'])} (torch {torch.__version__}, "
             f"{platform.machine()}, "
             f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} threads; 1-minute load average after runs "
             f"{min(loads, default=0):.1f}-{max(loads, default=0):.1f}). Tiny backbones, 64 px clips, "
             f"{args.epochs} epoch(s), batch {BATCH}, one test view; numbers are accuracy in %, mean ± sample standard "
             f"deviation over the seeds listed. Demo set: {demo_sets(results)}.", "",
             "The demo's 8 classes are 4 pairs of the same clips played backwards (move left/right, up/down, rotate "
             "clockwise/anticlockwise, approach/recede). **Pair accuracy** asks, for each of the 128 test clips, "
             "whether its class scores above its reversed twin: 50% is chance, and a model that averages frames "
             "cannot do better.", "",
             "Columns: **train top-1** scores the training split once after training (one un-augmented view); "
             "**before training** is the spec's model at initialisation on the test split, which equals the frozen "
             "backbone for the zero-shot specs and for specs whose added parts start as the identity (zero-initialised "
             "deltas), and is '—' for linear heads (nothing to score before training); **base-to-novel** is a "
             "separate run trained on the first 4 classes (move right/left, down/up) and tested on them (base) and "
             "on the other 4 (novel), with the harmonic mean, run for the rows that score class names and belong to "
             "MSTA's comparison (MSTA's Table 1 is base-to-novel) plus the zero-shot baselines, which cost no "
             "training (train top-1 of a model that does not train is its score on the training split as it is); "
             "**lr** is the spec's own; **seconds per run** is wall time including the evaluations (the "
             "base-to-novel runs included in the mean), and in brackets the CPU time of the run's processes.", "",
             "**Verdict rule.** Pair accuracy: for each seed, an exact one-sided binomial test of the number of test "
             f"clips whose class beats its twin against chance 1/2 over the clips; 'tells pairs apart' when p < "
             f"{ALPHA:g} in every seed, 'not told apart' when in none, 'inconsistent' otherwise. Against the frame "
             "mean: the difference of mean test top-1 over seeds divided by the pooled standard error "
             "sqrt(se_a² + se_b²), where each se² is the larger of the sample variance over seeds and the binomial "
             f"variance of one accuracy over 128 clips, divided by the number of seeds; 'above' or 'below' beyond "
             f"{SE_RULE:g} SE (conservative for 3 seeds per side: Welch's t with about 4 degrees of freedom has its "
             "2.5% point at 2.8), 'level with' otherwise.", ""]
    for weights in ("demo", "random"):
        if weights not in args.weights and not any(k.startswith(f"{weights}|") for k in results["runs"]):
            continue
        title = {"demo": "Tiny pretrained demo weights", "random": "Random weights"}.get(weights, weights)
        seeds = args.random_seeds if weights == "random" else args.seeds
        lines += [f"## {title} (`--weights {weights}`)", "", *table(results, weights, seeds, args.epochs), ""]
    (args.into / "learning.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every run (each stage of a staged spec)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the demo-weights runs")
    parser.add_argument("--random-seeds", type=int, nargs="+", default=[0],
                        help="seeds of the random-weights runs (one by default, to fit the budget)")
    parser.add_argument("--weights", nargs="+", default=["demo", "random"], choices=["demo", "random"])
    parser.add_argument("--only", nargs="+", default=None,
                        help="run only these rows: a row's whole name (quoted) selects it alone, any other word "
                             "every row whose name contains it (case-insensitive); the default is every row but "
                             "the 16-frame variant")
    parser.add_argument("--redo", action="store_true", help="run again even what learning.json already has")
    parser.add_argument("--out", default="/tmp/composer-learning-runs", help="where the run directories go")
    parser.add_argument("--into", type=Path, default=ROOT / "benchmarks",
                        help="folder of learning.json (read to resume, then updated) and learning.md")
    args = parser.parse_args()
    for weights in args.weights:
        weights_option(weights)  # refuse a missing weights kind before any run
    args.into.mkdir(parents=True, exist_ok=True)
    path = args.into / "learning.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if "runs" not in results:  # the previous layout (one list per model) is not comparable: start afresh
        results = {"runs": {}}
    command = "python benchmarks/learning.py " + shlex.join(sys.argv[1:])
    results["commands"] = [c for c in results.get("commands", []) if c != command] + [command]  # a table in parts
    rows = [r for r in ROWS if any(selects(o, r) for o in args.only)] if args.only else [r for r in ROWS if r.default]
    if not rows:
        fail(f"--only {' '.join(args.only)} matches no row; rows: {', '.join(r.name for r in ROWS)}")
    for weights in args.weights:
        for row in rows:
            seeds = args.random_seeds if weights == "random" else args.seeds
            jobs = [("supervised", measure)] + ([("base-to-novel", measure_base_to_novel)] if row.base_to_novel else [])
            for protocol, how in jobs:
                for seed in seeds:
                    k = key(weights, protocol, row, seed)
                    done = results["runs"].get(k)
                    if done and done["settings"] == settings(row, args.epochs, weights) and not args.redo:
                        continue
                    try:
                        record = how(row, weights, seed, args.epochs, args.out)
                    except (DataError, SpecError) as e:
                        fail(f"{row.name} ({weights}, {protocol}, seed {seed}): {e}")
                    results["runs"][k] = record | {"settings": settings(row, args.epochs, weights)}
                    print(f"{weights} {protocol} {row.name} seed {seed}: "
                          + ", ".join(f"{n} {record[n]:.1f}" for n in ("top1", "pair", "train_top1", "harmonic_mean")
                                      if n in record) + f" ({record['seconds']:.0f} s)", flush=True)
                    path.write_text(json.dumps(results, indent=1))
                    write(results, args)
    path.write_text(json.dumps(results, indent=1))
    write(results, args)


if __name__ == "__main__":
    main()
