"""The fusion analysis of a sweep's variants (compiler/fusion.py): which share a frozen prefix, and how much.

Budget: a few tiny builds on the meta device (seconds)."""

from __future__ import annotations

import functools
from pathlib import Path

from click.testing import CliRunner

from composer.cli import main
from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.fusion import analyse, variant_runs
from composer.spec.load import load_spec

ROOT = Path(__file__).resolve().parents[1]
# as a sweep's --batch-size, --epochs and --precision give every variant (the two spec files differ in theirs)
RUN = {"batch_size": 16, "epochs": [10], "precision": "fp32"}
PROBE, ADAPTER = ROOT / "specs/baselines/clip-linear-probe.yaml", ROOT / "specs/baselines/clip-adapter.yaml"


@functools.lru_cache(maxsize=None)  # every test reads the same few builds; the analysis never changes a model
def _built(spec: Path, sets: tuple[str, ...] = ()):
    return compile_spec(load_spec(spec, ["inputs.video.size=64", *sets]), BuildOptions(device="meta", tiny=True))


def _runs(spec: Path, sets: tuple[str, ...] = ()):
    return variant_runs(spec.stem + str(sets), _built(spec, sets), RUN)


def test_the_shared_prefix_ends_at_the_first_block_anything_attaches_to():
    probe = _runs(PROBE)
    at_8 = _runs(ADAPTER, ("components.adapter.site=clip.visual.blocks[8-12].mlp",))
    at_1 = _runs(ADAPTER)
    (stream, untouched), = probe.untouched.items()
    assert untouched == 12 and at_8.untouched[stream] == 7 and at_1.untouched[stream] == 0
    group, = analyse([(probe.name, _built(PROBE), RUN),
                      (at_8.name, _built(ADAPTER, ("components.adapter.site=clip.visual.blocks[8-12].mlp",)), RUN)])
    embedding, block = probe.block_flops[stream]
    assert group.prefixes == {"clip.visual": 7} and group.shared == embedding + 7 * block
    assert group.own == {probe.name: probe.total - group.shared, at_8.name: at_8.total - group.shared}
    assert 0.5 < group.ratio < 1
    # every block of the tiny tower costs the same: twelve of them and the embedding are most of the probe
    assert embedding + 12 * block <= probe.total < embedding + 13 * block


def test_other_clips_another_backbone_or_a_trained_backbone_share_nothing():
    base = ("probe", _built(PROBE), None)
    for sets in (["inputs.video.frames=4"], ["train.batch_size=8"], ["train.seed=1"], ["train.epochs=3"],
                 ["train.precision=bf16"], ["backbones.clip.size=ViT-B/32"], ["backbones.clip.frozen=false"]):
        groups = analyse([base, ("other", _built(PROBE, tuple(sets)), None)])
        assert [g.variants for g in groups] == [["probe"], ["other"]], sets
        assert all(g.shared == 0 and g.ratio == 1.0 for g in groups)


def test_the_tds_ablations_share_the_whole_frozen_tower_beside_their_side_networks():
    """TDS-CLIP's side networks read taps, which change nothing; the tower's input is a frozen call (the
    centre frame of each segment), compared call by call."""
    specs = [ROOT / "specs/papers/tds-clip.yaml", ROOT / "specs/papers/ablations/tds-clip-no-sme.yaml"]
    group, = analyse([(s.stem, _built(s), None) for s in specs])
    assert group.prefixes == {"clip.visual": 12} and group.shared > 0


def test_the_dry_run_prints_the_groups(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(ADAPTER), "--grid",
                                       "components.adapter.site=clip.visual.blocks[8-12].mlp,clip.visual.blocks[10-12].mlp",
                                       "--dry-run", "--size", "tiny"])
    assert result.exit_code == 0, result.output
    assert "shared frozen work" in result.output and "clip.visual 1-7" in result.output


def test_a_chain_of_variants_is_one_group_and_a_pretrained_run_is_its_own_stream():
    """A shares blocks 1-7 with B, B blocks 1-9 with C (adapters at 8-12 and 10-12, and a probe): one group;
    the 7 blocks all three share are counted once (the 2 more that two of them share are not claimed)."""
    variants = [("at8", _built(ADAPTER, ("components.adapter.site=clip.visual.blocks[8-12].mlp",)), RUN),
                ("at10", _built(ADAPTER, ("components.adapter.site=clip.visual.blocks[10-12].mlp",)), RUN),
                ("probe", _built(PROBE), RUN)]
    group, = analyse(variants)
    assert sorted(group.variants) == ["at10", "at8", "probe"] and group.prefixes == {"clip.visual": 7}
    assert all(own > 0 for own in group.own.values())
    trained = variant_runs("unfrozen", _built(PROBE, ("backbones.clip.frozen=false",)), RUN)
    assert set(trained.untouched.values()) == {0}
