"""FLOPs are counted correctly, attention included (reference figures in docs/reproduction.md)."""

import pytest

from composer.compiler.compile import compile_spec
from composer.compiler.flops import count_flops
from composer.spec.load import load_spec


def test_clip_b16_eight_frames_is_281_gflops():
    # the "Vanilla CLIP 281" of the MSTA paper's table: 8 x 35.13 GFLOPs of ViT-B/16 at 224 px
    report = count_flops(compile_spec(load_spec("specs/baselines/clip-zero-shot.yaml")))
    assert report.per_clip / 1e9 == pytest.approx(281.0, abs=0.1)
    assert report.per_class_set > 0  # the text tower, counted apart: the plan computes it once


def test_dinov2_b14_is_46_32_gflops_per_frame():
    spec = load_spec("specs/baselines/dinov2-dora-linear.yaml", sets=["inputs.video.frames=1"],
                     unsets=["components.dora"])
    report = count_flops(compile_spec(spec))
    assert report.by_node["dino.visual(video)"] / 1e9 == pytest.approx(46.32, abs=0.01)


def test_attachments_add_their_own_flops():
    base = count_flops(compile_spec(load_spec("specs/baselines/clip-zero-shot.yaml"))).per_clip
    adapted = count_flops(compile_spec(load_spec("specs/baselines/clip-adapter.yaml"))).per_clip
    # 12 blocks x 8 frames x 197 tokens x 2 linears (768x64 and 64x768) x 2 FLOPs per MAC
    assert adapted - base == pytest.approx(12 * 8 * 197 * 2 * 768 * 64 * 2, rel=0.01)
