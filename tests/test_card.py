"""The model card of a run (RUN_DIR/README.md): front matter in the Hub's schema, the command that recreates
the run, the checkpoints' hashes, and an honest status while a run has no test metrics."""

import json
import re
import shlex
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from composer.cli import main
from composer.commands.run import run as run_command
from composer.commands.run import run_options
from composer.files import file_sha256
from composer.rundir import card as card_module
from composer.rundir.checkpoint_dir import latest_checkpoint
from composer.spec.load import load_spec
from composer.spec.printer import to_yaml
from composer.train import run as run_module
from composer.train.run import Run, RunOptions

SPEC = "specs/baselines/clip-adapter.yaml"
SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


@pytest.fixture(scope="module")
def finished(demo_root, tmp_path_factory):
    """One tiny run of one epoch, and the card as it stood each time the run wrote it."""
    written = []
    original = run_module.write_card

    def spy(run_dir, info=None):
        path = original(run_dir, info)
        written.append(path.read_text(encoding="utf-8"))
        return path

    options = RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=1, max_steps=1, batch_size=8,
                         workers=0, out=str(tmp_path_factory.mktemp("card") / "runs"), sets=list(SMALL), seed=1,
                         unsets=["components.adapter.params.scale"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_module, "write_card", spy)
        job = Run(SPEC, options, console=Console(quiet=True))
        job.fit()
        job.finish()
    return job.dir, written


def front_matter(card: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, card[:200]
    return yaml.safe_load(match.group(1))


def commands(card: str) -> list[list[str]]:
    return [shlex.split(block) for block in re.findall(r"```bash\n(.*?)\n```", card, re.S)]


def parsed(args: list[str]) -> tuple[str, RunOptions]:
    """SPEC and the RunOptions that `composer run ARGS` would train with."""
    assert args[:2] == ["composer", "run"], args
    params = run_command.make_context("run", args[2:]).params
    return params["spec"], run_options(params)


def test_front_matter_holds_the_results_of_summary_json(finished):
    run_dir, _ = finished
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    front = front_matter(card)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert front["library_name"] == "composer" and front["datasets"] == ["demo"]
    assert {"video-classification", "action-recognition", "composer", "clip"} <= set(front["tags"])
    [model] = front["model-index"]
    [result] = model["results"]
    assert model["name"] == "clip-adapter" and result["task"]["type"] == "video-classification"
    assert result["dataset"]["type"] == "demo" and result["dataset"]["split"] == "test"
    values = {m["name"]: m["value"] for m in result["metrics"]}
    test = summary["parts"]["test"]
    assert values["top-1 accuracy (%)"] == test["top1"] and values["top-5 accuracy (%)"] == test["top5"]
    assert f"| test | {test['count']} | 0 | {test['top1']:.2f} |" in card
    assert "![confusion matrix of test](confusion-test.png)" in card and (run_dir / "confusion-test.png").is_file()
    assert "random (tiny stand-in generated from seed 1" in card and "**Tiny, random weights.**" in card


def test_the_card_counts_what_composer_build_counts(finished):
    run_dir, _ = finished
    result = CliRunner().invoke(main, ["build", str(run_dir / "spec.yaml"), "--size", "tiny", "--classes", "8",
                                       "--json", "--no-flops"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    assert f"Parameters: {info['total_params']:,} in all, {info['trainable_params']:,} trainable" in card
    assert "`clip.visual.blocks[*].mlp` (parallel; layers 1-12)" in card
    assert f"Model fingerprint: `{info['fingerprint']}`" in card


def test_the_reproduce_commands_name_the_runs_spec_and_options(finished):
    run_dir, _ = finished
    record = json.loads((run_dir / "run.json").read_text())
    given, here = commands((run_dir / "README.md").read_text(encoding="utf-8"))
    spec, options = parsed(given)
    assert spec == SPEC == record["spec"]
    assert asdict(options) == record["options"]
    spec, options = parsed(here)
    assert spec == str(run_dir / "spec.yaml")
    assert asdict(options) == record["options"] | {"sets": [], "unsets": []}
    # spec.yaml already holds the --set and --unset values: both commands train the same spec
    dump = lambda s: to_yaml(s.model_dump(mode="json", by_alias=True, exclude_defaults=True))  # noqa: E731
    assert dump(load_spec(spec)) == dump(load_spec(SPEC, record["options"]["sets"], record["options"]["unsets"]))


def test_the_checkpoint_hashes_are_the_files(finished):
    run_dir, _ = finished
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    hashes = dict(re.findall(r"- `([^`]+)` \(.*?\): SHA-256 `([0-9a-f]{64})`", card))
    latest = latest_checkpoint(run_dir / "checkpoints") / "weights.safetensors"
    assert hashes == {"checkpoints/best.safetensors": file_sha256(run_dir / "checkpoints" / "best.safetensors"),
                      str(latest.relative_to(run_dir)): file_sha256(latest)}


def test_the_card_says_which_weights_each_number_belongs_to(finished):
    """The results score the final weights; best.safetensors is another epoch's pick, so the card says which is
    which (it led with best.safetensors, whose evaluation gives other numbers)."""
    run_dir, _ = finished
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    results = card.split("## Results")[1].split("\n## ")[0]
    latest = (latest_checkpoint(run_dir / "checkpoints") / "weights.safetensors").relative_to(run_dir)
    assert f"These results score the final weights, `{latest}` (stage train, epoch 1, step 1)" in results
    assert "not the scores of `checkpoints/best.safetensors`" in results
    saved = re.findall(r"^- `([^`]+)` \((.*?)\): SHA-256", card.split("## Checkpoints")[1], re.M)
    assert [path for path, _ in saved] == [str(latest), "checkpoints/best.safetensors"]
    assert "the final weights the results score" in saved[0][1]
    assert "not the weights the results score" in saved[1][1]


def test_epochs_count_from_one_in_every_message(finished):
    """metrics.jsonl, the card and checkpoint messages name the one epoch of the run alike (the card said
    `stage 1, epoch 0` for it: the machine's count of finished stages and epochs)."""
    from composer.rundir.checkpoint_dir import describe

    run_dir, written = finished
    [record] = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert (record["stage"], record["epoch"]) == ("train", 1)
    assert "(stage train, epoch 1, step 1)" in written[1]  # the card after the epoch, before the test
    latest = latest_checkpoint(run_dir / "checkpoints")
    assert describe(latest) == f"{latest} (epoch 1, step 1)"


def test_while_training_the_card_says_there_are_no_results_yet(finished):
    run_dir, written = finished
    assert len(written) == 3  # at the start, after the epoch, at the end
    assert "**Not trained yet**" in written[0] and "model-index" not in front_matter(written[0])
    assert "**Not finished: interrupted, or still training.**" in written[1]
    assert "model-index" not in front_matter(written[1]) and "## Results" not in written[1]
    assert f"composer run --resume {run_dir}" in written[1]
    assert "model-index" in front_matter(written[-1]) and "Not finished" not in written[-1]


def test_composer_card_writes_the_card_of_an_older_or_interrupted_run(finished, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(finished[0], old)
    for name in ("README.md", "summary.json", "confusion-test.png", "learning-curves.png"):
        (old / name).unlink()
    record = json.loads((old / "run.json").read_text())
    del record["spec"]  # runs from before the card did not record the spec as given
    (old / "run.json").write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["card", str(old)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(old / "README.md")
    card = (old / "README.md").read_text(encoding="utf-8")
    assert "**Not finished: interrupted, or still training.**" in card and "model-index" not in front_matter(card)
    assert "single-view check (stage train, epoch 1" in card and "confusion-test.png" not in card
    [here] = commands(card)  # only spec.yaml's command: the spec as given is unknown
    assert parsed(here)[0] == str(old / "spec.yaml")


def test_base_to_novel_results_carry_the_harmonic_mean(finished, tmp_path):
    run = tmp_path / "b2n"
    shutil.copytree(finished[0], run)
    parts = {"base": {"count": 64, "failed": 0, "top1": 50.0, "top5": 90.0, "mean_class": 50.0},
             "novel": {"count": 64, "failed": 0, "top1": 25.0, "top5": 80.0, "mean_class": 25.0}}
    (run / "summary.json").write_text(json.dumps({"protocol": "base-to-novel", "views": [2, 1], "parts": parts,
                                                  "harmonic_mean": 100 / 3, "bad_videos": []}))
    result = CliRunner().invoke(main, ["card", str(run), "--stdout"])
    assert result.exit_code == 0, result.output
    results = front_matter(result.output)["model-index"][0]["results"]
    assert [r["dataset"]["split"] for r in results] == ["base", "novel", "base+novel"]
    assert results[2]["metrics"][0]["value"] == pytest.approx(100 / 3)
    assert "| harmonic mean (base, novel) | | | 33.33 |" in result.output
    assert (run / "README.md").read_text() != result.output  # --stdout leaves the file alone


@pytest.mark.parametrize("case", ["not a run", "missing", "damaged record", "not a record"])
def test_cli_refuses_with_one_line(finished, tmp_path, case):
    target = {"not a run": tmp_path, "missing": tmp_path / "nope"}.get(case, tmp_path / "run")
    if case in ("damaged record", "not a record"):
        shutil.copytree(finished[0], target)
        (target / "run.json").write_text("{not json" if case == "damaged record" else "[]")
    result = CliRunner().invoke(main, ["card", str(target)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")


def test_results_older_than_the_latest_checkpoint_are_left_out(finished, tmp_path):
    run = tmp_path / "resumed"
    shutil.copytree(finished[0], run)
    manifest = latest_checkpoint(run / "checkpoints") / "manifest.json"
    manifest.touch()  # as a finished run resumed for more epochs saves again
    card = CliRunner().invoke(main, ["card", str(run), "--stdout"]).output
    assert "**Training continued after the last test**" in card
    assert "model-index" not in front_matter(card) and "## Results" not in card


def test_a_spec_yaml_that_no_longer_fits_the_checkpoints_is_said(finished, tmp_path):
    run = tmp_path / "edited"
    shutil.copytree(finished[0], run)
    spec = yaml.safe_load((run / "spec.yaml").read_text())
    spec["components"]["adapter"]["params"]["dim"] = 32
    (run / "spec.yaml").write_text(yaml.safe_dump(spec))
    card = CliRunner().invoke(main, ["card", str(run), "--stdout"]).output
    assert "**The checkpoints do not fit spec.yaml**" in card
    assert "**The checkpoints do not fit" not in (finished[0] / "README.md").read_text()


def test_every_run_option_survives_the_reproduce_command():
    from composer.rundir.reproduce import reproduce_commands

    options = RunOptions(dataset="ucf101", data_root="/data/ucf 101", split=2, protocol="few-shot", shots=4,
                         eval_dataset="hmdb51", eval_root="/data/hmdb", tiny=True, epochs=3, batch_size=16,
                         eval_batch_size=4, lr=0.01, workers=3, device="cpu", precision="bf16", seed=5, out="o",
                         skip_missing=True, short_videos="skip", max_steps=7, eval_every=2, save_every=5,
                         progress_every=9, gpu_decode=True, plan=False, recompute="all", cache_features="cache",
                         compile=True, fsdp=True, log_with=["tensorboard", "mlflow"], tracking_uri="sqlite:///x.db",
                         sets=["train.views={clips: 2, crops: 1}"], unsets=["components.adapter"])
    assert options != RunOptions(dataset="ucf101")
    record = {"options": asdict(options), "spec": "msta", "processes": 1}
    given, here = reproduce_commands(record, Path("runs/msta-1"))
    assert parsed(shlex.split(given)) == ("msta", options)
    assert parsed(shlex.split(here)) == ("runs/msta-1/spec.yaml", RunOptions(**asdict(options) | {"sets": [],
                                                                                                   "unsets": []}))
    assert parsed(shlex.split(reproduce_commands({"options": asdict(RunOptions(dataset="demo"))}, Path("r"))[0])) \
        == ("r/spec.yaml", RunOptions(dataset="demo"))


def test_the_front_matter_names_the_hub_models_a_run_adapts():
    """base_model and base_model_relation, as the Hub links an adapter to its base: Hub repositories only (not
    open_clip's tags, local files or tiny stand-ins); "finetune" when a backbone itself trains."""
    def info(**backbones):
        return {"backbones": {name: {"family": f, "size": "ViT-B/16", "tiny": tiny, "weights": w, "frozen": frozen}
                              for name, (f, w, tiny, frozen) in backbones.items()}}

    record = {"options": {"dataset": "demo"}}
    front = card_module._front_matter("ftp", record, None, info(mae=("videomae", "MCG-NJU/videomae-base", False, True),
                                                         clip=("clip", "openai", False, True)))
    assert front["base_model"] == "MCG-NJU/videomae-base" and front["base_model_relation"] == "adapter"
    assert front["pipeline_tag"] == "video-classification"
    both = card_module._front_matter("x", record, None, info(a=("viclip", "OpenGVLab/ViCLIP-B-16-hf", False, False),
                                                      b=("videomae", "MCG-NJU/videomae-base", False, True)))
    assert both["base_model"] == ["OpenGVLab/ViCLIP-B-16-hf", "MCG-NJU/videomae-base"]
    assert both["base_model_relation"] == "finetune"
    tiny = card_module._front_matter("x", record, None, info(a=("videomae", "MCG-NJU/videomae-base", True, True)))
    assert "base_model" not in tiny and "base_model_relation" not in tiny


def test_a_run_is_laid_out_for_a_hub_whole_and_once(finished, tmp_path):
    run_dir = finished[0]
    out = tmp_path / "upload" / "adapter"
    result = CliRunner().invoke(main, ["card", str(run_dir), "--hub", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(["README.md", "spec.yaml", "model.safetensors",
                                                              "config.json", "learning-curves.png",
                                                              "confusion-test.png"])
    weights = latest_checkpoint(run_dir / "checkpoints") / "weights.safetensors"
    assert file_sha256(out / "model.safetensors") == file_sha256(weights)  # the weights the card's results score
    config = json.loads((out / "config.json").read_text())
    assert config["model.safetensors"]["sha256"] == file_sha256(weights) and len(config["classes"]) == 8
    assert (out / "README.md").read_text() == (run_dir / "README.md").read_text()
    assert (out / "spec.yaml").read_text() == (run_dir / "spec.yaml").read_text()
    again = CliRunner().invoke(main, ["card", str(run_dir), "--hub", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output
    assert [p.name for p in out.parent.iterdir()] == ["adapter"]  # no half-written folder beside it


def test_an_unfinished_run_is_not_laid_out_for_a_hub(finished, tmp_path):
    """Its latest weights have no results: the card would describe other weights than the file holds."""
    run_dir = tmp_path / "unfinished"
    shutil.copytree(finished[0], run_dir)
    (run_dir / "summary.json").unlink()
    result = CliRunner().invoke(main, ["card", str(run_dir), "--hub", str(tmp_path / "up")])
    assert result.exit_code == 2 and "no test results of its latest weights" in result.output
    assert not (tmp_path / "up").exists()
