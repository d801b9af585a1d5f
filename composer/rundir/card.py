"""The model card of a run: RUN_DIR/README.md, in the layout of a Hugging Face model card.

YAML front matter (library_name, tags, datasets, metrics and, once the run is tested, a `model-index`
with its results in the Hub's schema), then Markdown: what the model is, its results with the pictures,
what trains and where it attaches, the data and protocol, the command that recreates the run and the
checkpoints' SHA-256. Everything comes from the files of the run directory (run.json, spec.yaml,
summary.json, metrics.jsonl, checkpoints/), so `composer card RUN_DIR` writes the same card for a run
made before cards existed; the architecture is rebuilt from spec.yaml on the meta device and described
by composer/compiler/summary.py, as `composer build` does. A run without test metrics says so plainly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from composer.backbones.weights import is_local_path
from composer.errors import DataError, SpecError
from composer.files import file_sha256
from composer.rundir.checkpoint_dir import latest_checkpoint, position, read_manifest
from composer.rundir.reading import model_info, read_run, stored_meta
from composer.rundir.records import write_text
from composer.rundir.reproduce import reproduce_commands
from composer.rundir.resolve import resolve
from composer.rundir.resume import recorded_options
from composer.spec.load import load_spec
from composer.spec.site import spans

CARD = "README.md"
TAGS = ["video-classification", "action-recognition", "composer"]


# -- the card
def _front_matter(name: str, record: dict[str, Any], summary: dict[str, Any] | None,
                  info: dict[str, Any] | None) -> dict[str, Any]:
    options = record.get("options", {})
    dataset = record.get("dataset", {}).get("name") or options.get("dataset")
    families = list(dict.fromkeys(b["family"] for b in (info or {}).get("backbones", {}).values()))
    datasets = list(dict.fromkeys(d for d in (dataset, options.get("eval_dataset")) if d))
    front: dict[str, Any] = {"library_name": "composer", "pipeline_tag": "video-classification",
                             "tags": TAGS + [f for f in families if f not in TAGS], "datasets": datasets,
                             "metrics": ["accuracy"]}
    backbones = (info or {}).get("backbones", {}).values()
    bases = list(dict.fromkeys(b["weights"] for b in backbones if not b["tiny"] and _hub_id(b["weights"])))
    if bases:  # how the Hub links a model to the models it was made from
        front["base_model"] = bases[0] if len(bases) == 1 else bases
        front["base_model_relation"] = "adapter" if all(b["frozen"] for b in backbones) else "finetune"
    if summary is not None:
        front["model-index"] = [{"name": name, "results": _results(record, summary)}]
    return front


def _hub_id(weights: str | None) -> bool:
    """Whether a backbone's weights name a Hub repository (owner/name), not a library's tag ("openai") or a
    local file."""
    return bool(weights) and re.fullmatch(r"[\w.-]+/[\w.-]+", weights) is not None and not is_local_path(weights)


def _results(record: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One model-index result per test part (accuracies in percent, as summary.json holds them)."""
    options = record.get("options", {})
    trained_on = record.get("dataset", {}).get("name") or options.get("dataset")
    task = {"type": "video-classification", "name": "Video Classification"}
    results = []
    for part, m in summary["parts"].items():
        tested_on = options.get("eval_dataset") or trained_on
        dataset = {"name": f"{tested_on} ({part}, split {options.get('split', 1)})", "type": tested_on,
                   "split": part, "config": f"split{options.get('split', 1)}"}
        metrics = [{"type": "accuracy", "name": "top-1 accuracy (%)", "value": m["top1"]}]
        if "top5" in m:
            metrics.append({"type": "top-5-accuracy", "name": "top-5 accuracy (%)", "value": m["top5"]})
        if "mean_class" in m:
            metrics.append({"type": "mean-class-accuracy", "name": "mean class accuracy (%)", "value": m["mean_class"]})
        results.append({"task": task, "dataset": dataset, "metrics": metrics})
    if "harmonic_mean" in summary:
        results.append({"task": task, "dataset": {"name": f"{trained_on} (base and novel)", "type": trained_on,
                                                  "split": "base+novel"},
                        "metrics": [{"type": "harmonic-mean-accuracy", "name": "harmonic mean of base and novel "
                                     "top-1 (%)", "value": summary["harmonic_mean"]}]})
    return results


def _count(n: int) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 10_000 else f"{n:,}"


def _status(run_dir: Path, summary: dict[str, Any] | None, stale: bool, epochs: list[dict[str, Any]]) -> list[str]:
    if summary is not None:
        return []
    latest = latest_checkpoint(run_dir / "checkpoints")
    if stale:
        return [f"**Training continued after the last test**: the latest checkpoint, `{latest.relative_to(run_dir)}`, "
                "is newer than summary.json, whose results are of earlier weights; they are left out until the run "
                f"finishes (`composer run --resume {run_dir}` continues it).", ""]
    if latest is None:
        return ["**Not trained yet**: no checkpoint and no test metrics (the run is starting, or it stopped "
                "before its first checkpoint).", ""]
    manifest = _manifest(latest)
    lines = [f"**Not finished: interrupted, or still training.** There are no test metrics yet. The last "
             f"checkpoint is `{latest.relative_to(run_dir)}` ({position(manifest, stage=True)}); "
             f"`composer run --resume {run_dir}` continues from it."]
    evaluated = [e for e in epochs if any(isinstance(v, dict) and "top1" in v for v in e.values())]
    if evaluated:
        last = evaluated[-1]
        part, m = next((k, v) for k, v in last.items() if isinstance(v, dict) and "top1" in v)
        lines.append(f"Its last single-view check (stage {last['stage']}, epoch {last['epoch']}, test part {part}): "
                     f"top-1 {m['top1']:.2f}%. That is a per-epoch check, not the final multi-view test.")
    return lines + [""]


def _manifest(checkpoint: Path) -> dict[str, Any]:
    try:
        return read_manifest(checkpoint)
    except DataError:
        return {}


def _results_section(run_dir: Path, summary: dict[str, Any]) -> list[str]:
    views = summary.get("views", [1, 1])
    lines = ["## Results", "", f"Protocol {summary.get('protocol')}; {views[0]} clip(s) x {views[1]} crop(s) per "
             "video, softmax scores averaged. Accuracies in percent; test videos that could not be decoded "
             "count as wrong (\"failed\").", "",
             "| test part | videos | failed | top-1 | top-5 | mean class |", "|---|---:|---:|---:|---:|---:|"]
    for part, m in summary["parts"].items():
        top1, top5, mean = (f"{m[k]:.2f}" if k in m else "-" for k in ("top1", "top5", "mean_class"))
        lines.append(f"| {part} | {m.get('count', '-')} | {m.get('failed', 0)} | {top1} | {top5} | {mean} |")
    if "harmonic_mean" in summary:
        lines.append(f"| harmonic mean (base, novel) | | | {summary['harmonic_mean']:.2f} | | |")
    lines += ["", _scored_weights(run_dir), ""]
    if summary.get("bad_videos"):
        lines += [f"{len(summary['bad_videos'])} video(s) could not be decoded (listed in bad_videos.txt).", ""]
    for part in summary["parts"]:
        if (run_dir / f"confusion-{part}.png").is_file():
            lines += [f"![confusion matrix of {part}](confusion-{part}.png)", ""]
    return lines


def _scored_weights(run_dir: Path) -> str:
    """Which weights the results are of: the final ones (the test runs after the last epoch), never
    best.safetensors, which another epoch's single-view check picked."""
    latest = latest_checkpoint(run_dir / "checkpoints")
    if latest is None:
        return "These results score the weights as built: nothing was trained, so no checkpoint was saved."
    manifest = _manifest(latest)
    best = (" They are not the scores of `checkpoints/best.safetensors` (see Checkpoints): evaluating that file "
            "gives its own numbers." if (run_dir / "checkpoints" / "best.safetensors").is_file() else "")
    return (f"These results score the final weights, `{(latest / 'weights.safetensors').relative_to(run_dir)}` "
            f"({position(manifest, stage=True)}): the test runs once training ends.{best}")


def _curves(run_dir: Path) -> list[str]:
    if not (run_dir / "learning-curves.png").is_file():
        return []
    return ["Training loss and single-view test top-1 per epoch:", "", "![learning curves](learning-curves.png)", ""]


def _model_section(info: dict[str, Any], record: dict[str, Any]) -> list[str]:
    seed = record.get("seed")
    lines = ["## Model", "", "| backbone | family | size | weights | trains | towers (depth x width) |",
             "|---|---|---|---|---|---|"]
    for name, b in info["backbones"].items():
        if b["tiny"]:
            weights = f"random (tiny stand-in generated from seed {seed}; no pretrained weights)"
        else:
            weights = b["weights"] or "the family's default"
        towers = ", ".join(f"{t} {v['depth']}x{v['width']}" for t, v in b["towers"].items())
        lines.append(f"| {name} | {b['family']} | {'tiny ' if b['tiny'] else ''}{b['size']} | {weights} | "
                     f"{'no (frozen)' if b['frozen'] else 'yes'} | {towers} |")
    kinds = {n["call"]: n["kind"] for n in info["nodes"] if n["kind"] not in ("backbone", "tap")}
    places: dict[str, list[str]] = {}
    for a in info["attachments"]:
        kinds[a["component"]] = a["kind"]
        layers = ",".join(spans(a["layers"])) if a["layers"] else "-"
        places.setdefault(a["component"], []).append(f"`{a['site']}` ({a['use']}; layers {layers})")
    lines += ["", "| part | kind | attached at | trainable | total |", "|---|---|---|---:|---:|"]
    for part, c in info["params_by_part"].items():
        if part in info["backbones"] and not c["trainable"]:
            continue  # a frozen backbone: in the table above
        kind = "backbone" if part in info["backbones"] else kinds.get(part, "-")
        lines.append(f"| {part} | {kind} | {'; '.join(places.get(part, ['in the flow']))} | {_count(c['trainable'])} | "
                     f"{_count(c['total'])} |")
    share = 100 * info["trainable_params"] / max(1, info["total_params"])
    lines += ["", f"Parameters: {info['total_params']:,} in all, {info['trainable_params']:,} trainable "
              f"({share:.2f}%)."]
    if "gflops" in info:
        lines.append(f"Compute: {info['gflops']:.2f} GFLOPs per clip at the run's input size"
                     + (f", and {info['gflops_per_class_set']:.2f} GFLOPs once per class set"
                        if info.get("gflops_per_class_set") else "") + ".")
    lines += [f"Model fingerprint: `{info['fingerprint']}` (checkpoints of this model carry the same).", ""]
    return lines


def _data_section(record: dict[str, Any], spec) -> list[str]:
    options = record.get("options", {})
    data = record.get("dataset", {})
    train = spec.train
    tests = ", ".join(f"{k} {v}" for k, v in data.get("tests", {}).items())
    said = [f"{s.epochs} epoch(s) at lr {s.lr:g}" for s in resolve(spec, recorded_options(record)).schedules]
    epochs = "; ".join(f"stage {n} ({', '.join(s.trains)} train): {line}"
                       for (n, s), line in zip(spec.stages.items(), said)) if spec.stages else said[0]
    protocol = record.get("protocol", options.get("protocol"))
    lines = ["## Data and protocol", "",
             f"- dataset: {data.get('name', options.get('dataset'))} at `{data.get('root', options.get('data_root'))}`"
             f", split {options.get('split', 1)}, {data.get('classes', '?')} classes",
             f"- videos: {data.get('train', '?')} for training; tested: {tests}"
             + (f" ({len(data['missing_skipped'])} missing skipped)" if data.get("missing_skipped") else ""),
             f"- protocol: {protocol}"
             + (f", tested on {options['eval_dataset']}" if options.get("eval_dataset") else ""),
             f"- test views: {train.views.clips} clip(s) x {train.views.crops} crop(s)",
             f"- seed: {record.get('seed')}",
             f"- training: {epochs}; {train.optimizer}, {train.schedule} schedule"
             + (f", at most {options['max_steps']} steps per epoch (--max-steps)" if options.get("max_steps") else ""),
             f"- batch: {record.get('global_batch')} clips per step ({record.get('per_process_batch')} on each of "
             f"{record.get('processes', 1)} process(es)), accumulation {train.accumulate}",
             f"- precision {record.get('precision')} on {record.get('device')}; composer {record.get('composer')}, "
             f"torch {record.get('versions', {}).get('torch')}"]
    for change in record.get("changes", []):
        at = change.get("from_step", {})
        lines.append(f"- changed on resume: {change['option']} {change['from']} -> {change['to']} from optimiser "
                     f"step {at.get('step')}")
    return lines + [""]


def _reproduce_section(record: dict[str, Any], run_dir: Path) -> list[str]:
    commands = reproduce_commands(record, run_dir)
    lines = ["## Reproduce", ""]
    if len(commands) == 2:
        lines += ["From the spec as it was given (with its --set and --unset values):", "", "```bash", commands[0],
                  "```", "", "or from `spec.yaml` here, the spec exactly as it ran (those values already in it):", ""]
    else:
        lines += ["From `spec.yaml` here, the spec exactly as it ran (any --set and --unset values already in it):",
                  ""]
    lines += ["```bash", commands[-1], "```", ""]
    if record.get("command"):
        lines += [f"The command line as typed: `{record['command']}`", ""]
    return lines


def _checkpoint_section(run_dir: Path, info: dict[str, Any] | None) -> list[str]:
    lines = ["## Checkpoints", ""]
    latest = latest_checkpoint(run_dir / "checkpoints")
    if latest is not None:  # first: the weights the results score (when there are results)
        weights, manifest = latest / "weights.safetensors", _manifest(latest)
        lines.append(f"- `{weights.relative_to(run_dir)}` (the latest saved state: {position(manifest, stage=True)}; "
                     "once the run finished, the final weights the results score): "
                     f"SHA-256 `{file_sha256(weights)}`")
    best = run_dir / "checkpoints" / "best.safetensors"
    if best.is_file():
        meta = stored_meta(best)
        top1 = f", single-view top-1 {meta['top1']:.2f}% in that epoch's check" if "top1" in meta else ""
        lines.append(f"- `checkpoints/best.safetensors` (trainable weights of the best evaluated epoch: stage "
                     f"{meta.get('stage')}, epoch {meta.get('epoch')}{top1}; not the weights the results score): "
                     f"SHA-256 `{file_sha256(best)}`")
    if len(lines) == 2:
        lines.append("- none saved yet")
    saved = _manifest(latest).get("fingerprint") if latest is not None else None
    if info is not None and saved and saved != info["fingerprint"]:
        lines += ["", f"**The checkpoints do not fit spec.yaml**: they were saved from a model with fingerprint "
                  f"`{saved}`, but spec.yaml builds `{info['fingerprint']}` here (was spec.yaml edited?)."]
    return lines + ["", "`composer eval` and `composer predict` take `--checkpoint` as either file; they verify it "
                    "before use.", ""]


def model_card(run_dir: Path, info: dict[str, Any] | None = None) -> str:
    """The card's text, from the run directory alone. `info` is the model's build report when the caller
    has it (a running run computes it once); otherwise it is rebuilt from spec.yaml."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    record, summary = run["record"], run["summary"]
    spec = load_spec(str(run_dir / "spec.yaml"))
    name = spec.name or run_dir.name
    problem = None
    if info is None:
        try:
            info = model_info(run_dir, record)
        except SpecError as e:  # a spec this composer no longer builds (a run from an older version)
            problem = str(e).splitlines()[0]
    front = yaml.safe_dump(_front_matter(name, record, summary, info), sort_keys=False, allow_unicode=True)
    lines = ["---", front.rstrip("\n"), "---", "", f"# {name}", ""]
    if spec.description:
        lines += [spec.description, ""]
    if spec.paper:
        lines += [f"Paper: {spec.paper}", ""]
    if record.get("options", {}).get("tiny"):
        lines += ["**Tiny, random weights.** This run used small random-weight stand-ins for the backbones "
                  "(`--size tiny`): its numbers check the pipeline and say nothing about the method.", ""]
    lines += _status(run_dir, summary, run["stale"], run["epochs"])
    if summary is not None:
        lines += _results_section(run_dir, summary)
    lines += _curves(run_dir)
    if info is not None:
        lines += _model_section(info, record)
    else:
        lines += ["## Model", "", f"spec.yaml could not be rebuilt by this composer: {problem}", ""]
    lines += _data_section(record, spec) + _reproduce_section(record, run_dir) + _checkpoint_section(run_dir, info)
    lines += ["Written by composer from the files of this run directory; `composer card RUN_DIR` writes it again."]
    return "\n".join(lines) + "\n"


def write_card(run_dir: Path, info: dict[str, Any] | None = None) -> Path:
    """Write RUN_DIR/README.md atomically (a reader never sees half a card)."""
    path = Path(run_dir) / CARD
    write_text(path, model_card(run_dir, info))
    return path
