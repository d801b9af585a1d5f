"""The statistics behind benchmarks/learning.py's verdicts: pair accuracy, the binomial test and the
comparison with the frame-mean probe (the runs themselves are the benchmark's, not the suite's)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import torch

from composer.backbones import demo_weights
from composer.backbones.demo_weights import manifest
from composer.data.demo import CLASSES

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"
_spec = importlib.util.spec_from_file_location("learning_bench", _path)
learning = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = learning  # its dataclasses look their module up by name
_spec.loader.exec_module(learning)


def test_pair_hits_compares_each_clip_with_its_reversed_twin_only():
    # clip 0 is "move right": its twin "move left" scores lower -> hit, although "move up" scores higher still
    # clip 1 is "move left": its twin "move right" scores higher -> miss
    scores = torch.zeros(2, len(CLASSES))
    right, left, up = CLASSES.index("move right"), CLASSES.index("move left"), CLASSES.index("move up")
    scores[0, right], scores[0, left], scores[0, up] = 0.3, 0.2, 0.9
    scores[1, right], scores[1, left] = 0.6, 0.4
    hits = learning.pair_hits(scores, torch.tensor([right, left]), CLASSES)
    assert hits.tolist() == [True, False]


def test_pair_hits_uses_the_part_class_names_and_skips_clips_without_a_twin():
    classes = ["rotate clockwise", "rotate anticlockwise", "approach"]  # "recede" is not in this part
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0]])
    hits = learning.pair_hits(scores, torch.tensor([0, 1, 2]), classes)
    assert hits.tolist() == [False, True]


def test_binomial_p_is_the_upper_tail():
    assert learning.binomial_p(0, 10) == 1.0
    assert math.isclose(learning.binomial_p(2, 2), 0.25)
    assert math.isclose(learning.binomial_p(1, 2), 0.75)
    assert math.isclose(learning.binomial_p(9, 10), 11 / 1024)


def run(hits: int) -> dict:
    return {"pair_hits": hits, "pair_n": 128}


def test_pair_verdict_needs_every_seed_above_chance():
    assert learning.pair_verdict([run(64), run(66), run(60)]).startswith("pairs not told apart")
    assert learning.pair_verdict([run(90), run(95), run(88)]).startswith("tells pairs apart")
    # 80 of 128 is p ~ 0.003, 72 of 128 is p ~ 0.09: one seed short of the rule
    assert learning.pair_verdict([run(80), run(80), run(72)]).startswith("inconsistent (p<0.01 in 2/3")


def test_compare_floors_the_spread_at_the_binomial_error():
    # identical seeds on both sides: the sample spread is zero, but 10 points over 128 clips is within 3 SE
    diff, z, word = learning.compare([50.0, 50.0, 50.0], [40.0, 40.0, 40.0], 128)
    assert diff == 10.0 and 2.0 < z < 3.0 and word == "level with"
    _, z, word = learning.compare([80.0, 82.0, 78.0], [40.0, 41.0, 39.0], 128)
    assert z > 3 and word == "above"
    _, _, word = learning.compare([20.0, 60.0, 10.0], [40.0, 41.0, 39.0], 128)  # noisy seeds: no difference
    assert word == "level with"
    _, _, word = learning.compare([10.0, 11.0, 12.0], [40.0, 41.0, 39.0], 128)
    assert word == "below"


def test_a_demo_run_counts_as_done_only_with_the_same_files_of_its_own_backbones(monkeypatch, tmp_path):
    """Pretraining one family again reruns only the rows that read its file (about 1 s: specs are loaded)."""
    dino = next(r for r in learning.ROWS if r.spec == "specs/papers/dinov2-clip-dora.yaml")
    msta = next(r for r in learning.ROWS if r.name == "MSTA")
    record = manifest()
    files = learning.settings(dino, 2, "demo")["demo_files"]
    assert files == {"clip": record["files"]["clip"]["sha256"], "dinov2": record["files"]["dinov2"]["sha256"]}
    assert "demo_files" not in learning.settings(dino, 2, "random")
    before = {row.name: learning.settings(row, 2, "demo") for row in (dino, msta)}
    record["files"]["dinov2"]["sha256"] = "0" * 64  # DINOv2 pretrained again, the other files kept
    (tmp_path / "manifest.json").write_text(json.dumps(record))
    monkeypatch.setattr(demo_weights, "FOLDER", tmp_path)
    assert learning.settings(msta, 2, "demo") == before[msta.name]
    assert learning.settings(dino, 2, "demo") == before[dino.name] | {"demo_files": files | {"dinov2": "0" * 64}}


def test_a_whole_row_name_selects_that_row_alone():
    names = [r.name for r in learning.ROWS if learning.selects("temporal prompts + dual text", r)]
    assert names == ["temporal prompts + dual text"]
    assert len([r for r in learning.ROWS if learning.selects("temporal", r)]) == 4
    assert [r.name for r in learning.ROWS if learning.selects("MSTA", r)][0] == "MSTA"
