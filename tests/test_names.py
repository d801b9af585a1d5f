"""A spec's name becomes a path (runs/<name>-<time>), so it must be one plain path component; files a command
writes into a folder that is missing or unwritable are one-line refusals."""

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.errors import SpecError, cut
from composer.spec.load import load_spec

SPEC = "specs/baselines/clip-adapter.yaml"


@pytest.mark.parametrize("name", ["../up", "../../../tmp/escaped", "/abs", "..", ".", "a/b", "a\\b", ".hidden",
                                  "-rf", "a b", "x" * 101])
def test_a_name_that_is_not_one_path_component_is_refused_where_it_is_written(name):
    with pytest.raises(SpecError) as e:
        load_spec(SPEC, sets=[f"name={name}"])
    problem = e.value.problems[0]
    assert problem.message == f"name: {cut(repr(name))} cannot name a run folder"
    assert problem.loc is not None and problem.loc.file == "<--set #1>" and "run folder" in problem.hint


@pytest.mark.parametrize("name", ["msta-few-shot", "clip_adapter.v2", "a+b", "_x", "7up"])
def test_ordinary_names_are_kept(name):
    assert load_spec(SPEC, sets=[f"name={name}"]).name == name


def test_a_spec_without_a_name_is_named_after_its_file_made_safe(tmp_path):
    text = "".join(line for line in open(SPEC).read().splitlines(keepends=True) if not line.startswith("name:"))
    for file, expected in (("my spec (v2).yaml", "my-spec-v2-"), ("...yaml", "spec"), ("ok.yaml", "ok")):
        (tmp_path / file).write_text(text)
        assert load_spec(tmp_path / file).name == expected


def test_composer_run_refuses_an_escaping_name_before_writing_anything(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    result = CliRunner().invoke(main, ["run", SPEC, "--set", "name=../../escaped", "--dataset", "demo", "--data-root",
                                       str(tmp_path / "no-data"), "--size", "tiny", "--out", str(box / "runs")])
    assert result.exit_code == 2 and "cannot name a run folder" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box"] and not any(box.iterdir())


@pytest.mark.parametrize("args", [["graph", SPEC, "--format", "json"], ["fmt", SPEC, "--to", "text"],
                                  ["report", "msta"]])
def test_an_output_file_in_a_missing_folder_is_one_line(tmp_path, args):
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "missing" / "out.txt")])
    assert result.exit_code == 2 and not isinstance(result.exception, OSError), result.output
    assert result.output.strip() == f"error: cannot write {tmp_path / 'missing' / 'out.txt'}: No such file or " \
                                    "directory"


@pytest.mark.parametrize("run_dir, done", [("runs/a/a-20260101-000000", True), ("../elsewhere/a-1", False),
                                           ("/abs/a-1", False), ("runs/a/..", False), ("runs/b/a-1", False),
                                           (7, False), (["runs"], False)])
def test_a_sweep_believes_only_run_directories_inside_its_own_runs_folder(tmp_path, run_dir, done):
    """A sweep skips a job its record calls done; the record's run_dir must be one of its own runs/<job>/."""
    import json

    from composer.sweep.directory import finished
    from composer.sweep.plan import Job, Variant

    job = Job(0, "a", Variant("a", SPEC, (), ""), None)
    sweep = tmp_path / "sweep"
    (sweep / "variants").mkdir(parents=True)
    for where in (sweep / "runs/a/a-20260101-000000", tmp_path / "elsewhere/a-1", sweep / "runs/b/a-1",
                  tmp_path / "abs/a-1"):  # each holds a summary.json
        where.mkdir(parents=True)
        (where / "summary.json").write_text("{}")
    name = str(tmp_path / "abs" / "a-1") if run_dir == "/abs/a-1" else run_dir
    (sweep / "variants" / "a.json").write_text(json.dumps({"status": "done", "run_dir": name}))
    assert finished(sweep, job) is done
