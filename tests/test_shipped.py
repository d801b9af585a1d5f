"""Shipped specs by name: unique names, the same spec as the path, `extends` by name, errors that suggest."""

import json
from collections import defaultdict

from click.testing import CliRunner
from conftest import ROOT, SPECS, write

from composer.cli import main
from composer.compiler.shipped_list import specs_text
from composer.spec.load import load_spec
from composer.spec.shipped import shipped


def test_names_are_unique_across_folders():
    folders = defaultdict(set)
    for path in SPECS:
        folders[path.stem].add(path.parent)
    assert {name: dirs for name, dirs in folders.items() if len(dirs) > 1} == {}
    assert set(shipped()) == set(folders)


def test_a_name_is_the_yaml_file_where_both_syntaxes_exist():
    assert shipped()["msta"] == (ROOT / "specs" / "papers" / "msta.yaml").resolve()
    assert shipped()["clip-zero-shot"].suffix == ".yaml"
    assert load_spec("msta-few-shot").model_dump() == load_spec(ROOT / "specs/papers/msta-few-shot.yaml").model_dump()


def test_a_file_that_exists_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "msta", "name: mine\n")  # a file called like a shipped spec, without a suffix
    result = CliRunner().invoke(main, ["validate", "msta"])
    assert result.exit_code == 2 and "unknown spec file type" in result.output


def test_extends_takes_a_shipped_name(tmp_path):
    spec = load_spec(write(tmp_path, "mine.yaml", "extends: msta\nname: mine\ncomponents:\n  msta: {params: {dim: 64}}\n"))
    assert spec.name == "mine" and spec.components["msta"].params["dim"] == 64
    assert spec.paper == load_spec("msta").paper


def test_an_unknown_name_suggests_shipped_ones():
    result = CliRunner().invoke(main, ["build", "tds"])
    assert result.exit_code == 2
    assert "no spec file or shipped spec named 'tds'" in result.output
    assert "did you mean 'tds-clip'" in result.output and "Traceback" not in result.output


def test_specs_lists_every_name_with_the_trainable_count_of_build():
    listed = json.loads(CliRunner().invoke(main, ["specs", "--json"]).output)
    assert [r["name"] for r in listed] == sorted(shipped())
    row = next(r for r in listed if r["name"] == "tds-clip")
    built = json.loads(CliRunner().invoke(main, ["build", "tds-clip", "--json", "--no-flops"]).output)
    assert row["trainable_params"] == built["trainable_params"] > 0
    assert row["paper"].startswith("TDS-CLIP") and row["backbones"] == ["clip ViT-B/16"]
    assert row["file"] == "papers/tds-clip.yaml" and row["also"] == ["papers/tds-clip.comp"]
    lines = specs_text(listed).splitlines()  # what `composer specs` prints: one line per spec, then a note
    assert len(lines) == len(listed) + 3 and lines[1].split()[:2] == ["clip-adapter", "1.19M"]
    assert "the name means the YAML file" in lines[-1]
