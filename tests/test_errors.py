"""The corpus of broken specs (tests/corpus/broken): each ends with exit status 2 and a located message.

Each file's first line says what must be reported: `# expect: LINE:COL message`."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, write

from composer.cli import main

CORPUS = sorted((ROOT / "tests" / "corpus" / "broken").iterdir())


def _expectation(path: Path) -> tuple[str | None, str]:
    m = re.match(r"# expect: (?:(\d+:\d+) )?(.*)", path.read_text().splitlines()[0])
    return m.group(1), m.group(2)


def test_the_corpus_is_large_and_covers_both_front_ends():
    assert len(CORPUS) >= 30
    assert sum(p.suffix == ".comp" for p in CORPUS) >= 8


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_broken_spec_exits_2_with_a_located_message(path):
    where, message = _expectation(path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in result.output
    lines = [line for line in result.output.splitlines() if ": error: " in line]
    assert lines and all(re.match(r".+:\d+:\d+: error: ", line) for line in lines)
    if where:
        assert any(line.startswith(f"{path}:{where}: error: ") for line in lines), result.output


@pytest.mark.parametrize("args, message", [
    (["--set", "train.lrr=1"], "<--set #1>:1:1: error: unknown key 'lrr' in train"),
    (["--set", "components.adapter.params.dim=[1"], "cannot read value"),
    (["--set", "train.lr.x=1"], "is a value, not a section"),
    (["--set", "no-equals-sign"], "--set needs path=value"),
    (["--set", "components.adapter.site=clip.visual.blocks[0].mlp"], "layer 0 does not exist"),
    (["--unset", "components.nothing"], "cannot unset 'components.nothing'"),
])
def test_bad_command_line_overrides(args, message):
    result = CliRunner().invoke(main, ["validate", "specs/baselines/clip-adapter.yaml", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_missing_spec_file_and_unknown_suffix(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "spec file not found" in result.output
    result = CliRunner().invoke(main, ["validate", str(write(tmp_path, "spec.json", "{}"))])
    assert result.exit_code == 2 and "unknown spec file type" in result.output
