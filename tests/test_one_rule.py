"""Rules the commands once derived each for itself live in one place (issue 21): "tiny means 64 px"
(composer/build/compile.py: tiny_sets) and "--precision auto is bf16 where the GPU supports it"
(composer/build/precision.py: resolve_precision). A second copy would let two commands build different models.

Budget: about 2 s (reads the sources; loads one spec)."""

from pathlib import Path

import composer.build.compile as compile_module
from composer.build.precision import resolve_precision
from composer.train import sweep

PACKAGE = Path(__file__).resolve().parents[1] / "composer"
SPEC = "specs/baselines/clip-adapter.yaml"


def places(text: str) -> list[str]:
    return sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                  if text in p.read_text(encoding="utf-8"))


def test_each_rule_is_written_once():
    assert places('"inputs.video.size=') + places("inputs.video.size={") == ["composer/build/compile.py"] * 2
    assert places("is_bf16_supported") == ["composer/build/precision.py"]


def test_a_changed_tiny_size_is_what_a_sweep_variant_loads(monkeypatch):
    monkeypatch.setattr(compile_module, "TINY_SIZE", 96)
    spec = sweep.load_variant(sweep.Variant("v", SPEC, (), "v"), [], [], tiny=True)
    assert spec.video_input().size == 96
    assert sweep.load_variant(sweep.Variant("v", SPEC, (), "v"), ["inputs.video.size=128"], [], tiny=True) \
        .video_input().size == 128  # a --set wins


def test_auto_precision_on_the_cpu_is_fp32_and_a_named_one_stays():
    assert resolve_precision("auto", cpu=True) == "fp32"
    assert resolve_precision("fp16") == "fp16"
