"""The command line as a user meets it."""

import json

import pytest
from click.testing import CliRunner
from conftest import write

from composer.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_help_explains_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("build", "validate", "graph", "fmt", "kinds"):
        assert command in result.output
    assert "--set" in run("build", "--help").output


def test_build_json_reports_counts_flops_attachments_and_nodes():
    result = run("build", "specs/baselines/dinov2-dora-linear.yaml", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["trainable_params"] == 322_560 + 768 * 400 + 400
    assert info["total_params"] == 85_724_928 + info["trainable_params"]
    assert info["attachments"] == [{"component": "dora", "kind": "dora", "site": "dino.visual.blocks[*].attn.qkv",
                                    "use": "weight_delta", "backbone": "dino", "tower": "visual",
                                    "point": "attn.qkv", "layers": list(range(1, 13))}]
    assert [n["tensor"] for n in info["nodes"]] == ["frames", "clip_emb", "logits", "ce_loss"]
    assert info["gflops"] > 8 * 46.3


def test_build_table_shows_layers_and_trainable_share():
    result = run("build", "specs/baselines/clip-adapter.yaml", "--set", "components.adapter.site=clip.visual.blocks[8-12].mlp")
    assert result.exit_code == 0, result.output
    assert "8-12" in result.output and "trainable:" in result.output and "GFLOPs per clip" in result.output


def test_build_tiny_and_no_plan():
    result = run("build", "specs/baselines/clip-adapter.yaml", "--size", "tiny", "--no-plan", "--json", "--no-flops")
    info = json.loads(result.output)
    assert info["backbones"]["clip"]["tiny"] is True
    assert all("autograd from the input" in line for line in info["plan"])


def test_validate_ok():
    result = run("validate", "specs/baselines/clip-lora.yaml")
    assert result.exit_code == 0 and "ok" in result.output


@pytest.mark.parametrize("fmt, marker", [("dot", "subgraph cluster_0"), ("mermaid", "flowchart LR"),
                                         ("json", '"edges"')])
def test_graph_text_formats(fmt, marker):
    result = run("graph", "specs/baselines/clip-adapter.yaml", "--format", fmt)
    assert result.exit_code == 0 and marker in result.output
    assert "adapter: bottleneck_adapter" in result.output
    assert "[B, 8, 512]" in result.output


def test_graph_draws_frozen_and_trainable_parts_differently():
    dot = run("graph", "specs/baselines/clip-adapter.yaml", "--format", "dot").output
    adapter_line = next(line for line in dot.splitlines() if "adapter: bottleneck_adapter" in line)
    tower_line = next(line for line in dot.splitlines() if "12 blocks x 768" in line)
    assert "#d9f2d9" in adapter_line and "#e6e6e6" in tower_line


def test_svg_without_graphviz_says_how_to_install(monkeypatch, tmp_path):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = run("graph", "specs/baselines/clip-adapter.yaml", "--format", "svg", "-o", str(tmp_path / "g.svg"))
    assert result.exit_code == 2 and "apt-get install graphviz" in result.output


def test_fmt_converts_both_ways(tmp_path):
    text = run("fmt", "specs/baselines/clip-adapter.yaml", "--to", "text").output
    assert "component adapter: bottleneck_adapter(dim=64, scale=0.1) at clip.visual.blocks[*].mlp parallel" in text
    path = write(tmp_path, "s.comp", text)
    yaml = run("fmt", str(path), "--to", "yaml").output
    assert "site: clip.visual.blocks[*].mlp" in yaml


def test_fmt_resolved_merges_the_base(tmp_path):
    child = write(tmp_path, "c.yaml", "extends: %s\ncomponents:\n  adapter: {params: {dim: 16}}\n"
                  % (tmp_path.cwd() / "specs/baselines/clip-adapter.yaml"))
    result = run("fmt", str(child), "--to", "yaml", "--resolved")
    assert result.exit_code == 0, result.output
    assert "extends" not in result.output and "dim: 16" in result.output and "temporal_mean" in result.output


def test_kinds_lists_the_registry():
    result = run("kinds")
    assert result.exit_code == 0 and "bottleneck_adapter" in result.output and "dora" in result.output
