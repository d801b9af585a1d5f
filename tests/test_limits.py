"""Hostile specs: every limit of composer/spec/limits.py is a located error with exit 2, well under a second.

The time bound is 5 s, generous for a busy 2-core machine; the real times are a fraction of a second
(see docs/language.md, Limits). The corpus (tests/corpus/broken) holds one file per class that needs no setup."""

import os
import re
import time

import pytest
from click.testing import CliRunner
from conftest import ROOT, write

from composer.cli import main
from composer.spec import limits

BOUND_S = 5.0


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """Import the compiler once, so the bound measures the checks and not the first import of torch
    (start-up time is measured by benchmarks/startup.py)."""
    import composer.compiler.compile  # noqa: F401


def _refused(*args: str, message: str) -> str:
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["validate", *args])
    seconds = time.perf_counter() - start
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output, result.output
    assert re.search(r":\d+:\d+: error: ", result.output), result.output
    assert seconds < BOUND_S, f"{seconds:.1f} s"
    return result.output


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    spec = write(tmp_path, "big.yaml", "name: x\n" + "#" * limits.MAX_FILE_BYTES + "\n")
    _refused(str(spec), message=f"at most {limits.MAX_FILE_BYTES} bytes")


def test_an_extends_chain_longer_than_the_limit(tmp_path):
    write(tmp_path, "s0.yaml", "name: base\n")
    for i in range(1, limits.MAX_EXTENDS + 4):
        write(tmp_path, f"s{i}.yaml", f"extends: s{i - 1}.yaml\n")
    out = _refused(str(tmp_path / f"s{limits.MAX_EXTENDS + 3}.yaml"), message="'extends' chain longer than")
    assert "s4.yaml:1:10" in out  # located at the `extends` that would pass the limit


def test_a_chain_at_the_limit_still_loads(tmp_path):
    from composer.spec.load import resolve_document

    write(tmp_path, "s0.yaml", "name: base\n")
    for i in range(1, limits.MAX_EXTENDS):
        write(tmp_path, f"s{i}.yaml", f"extends: s{i - 1}.yaml\n")
    assert resolve_document(tmp_path / f"s{limits.MAX_EXTENDS - 1}.yaml").data == {"name": "base"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_extends_naming_a_fifo_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    _refused(str(write(tmp_path, "a.yaml", "extends: pipe.yaml\n")), message="is not a regular file")
    _refused(str(tmp_path / "pipe.yaml"), message="is not a regular file")  # and as the SPEC itself


def test_extends_through_a_symlink_loop(tmp_path):
    os.symlink(tmp_path / "l2.yaml", tmp_path / "l1.yaml")
    os.symlink(tmp_path / "l1.yaml", tmp_path / "l2.yaml")
    _refused(str(write(tmp_path, "a.yaml", "extends: l1.yaml\n")), message="symlink loop")


def test_extends_outside_the_allowed_roots(tmp_path, tmp_path_factory):
    elsewhere = write(tmp_path_factory.mktemp("elsewhere"), "base.yaml", "name: base\n")
    _refused(str(write(tmp_path, "a.yaml", f"extends: {elsewhere}\n")), message="outside the allowed folders")
    # a symlink inside the spec's folder does not widen the roots: the target is what counts
    os.symlink(elsewhere, tmp_path / "link.yaml")
    _refused(str(write(tmp_path, "b.yaml", "extends: link.yaml\n")), message="outside the allowed folders")


def test_extends_of_a_shipped_spec_by_absolute_path_is_allowed(tmp_path):
    from composer.spec.load import resolve_document

    doc = resolve_document(write(tmp_path, "a.yaml", f"extends: {ROOT / 'specs/papers/msta.yaml'}\nname: a\n"))
    assert doc.data["name"] == "a" and "msta" in doc.data["components"]


def test_twenty_thousand_mistakes_answer_at_once_with_the_first_50(tmp_path):
    spec = write(tmp_path, "many.yaml", "train:\n" + "".join(f"  k{i}: 1\n" for i in range(20_000)))
    out = _refused(str(spec), message="... and 19950 more errors (the first 50 are shown)")
    assert out.count(": error: ") == 50


def test_a_long_line_is_quoted_around_the_error_only(tmp_path):
    spec = write(tmp_path, "long.yaml", "{name: '" + "x" * 5000 + "', train: {lrr: 1}}\n")
    out = _refused(str(spec), message="unknown key 'lrr' in train")
    assert max(len(line) for line in out.splitlines()) < 300


@pytest.mark.parametrize("option, message", [
    ("train.lr=.inf", ".inf is not a finite number"),
    ("losses.ce=.nan", ".nan is not a finite number"),
    ("components.adapter.params.scale=-.inf", "-.inf is not a finite number"),
    ("components.adapter.params.dim=1000000000000", "larger than any machine could hold"),
    ("train.batch_size=1000000000000000", "4.82e+21 bytes"),
    ("train.seed=1" + "0" * 50, "number too long"),
])
def test_overrides_are_bounded_and_located_at_the_option(option, message):
    out = _refused("clip-adapter", "--set", option, message=message)
    assert out.startswith("<--set #1>:1:"), out


def test_set_points_at_the_option_and_suggests_the_nearest_path():
    out = _refused("clip-adapter", "--set", "components.adaptr.params.dim=3", message="'kind' is required")
    assert out.startswith("<--set #1>:1:1: error:") and "did you mean components.adapter?" in out
    out = _refused("clip-adapter", "--set", "trian.lr=1", message="unknown key 'trian'")
    assert out.startswith("<--set #1>:1:1: error:") and "did you mean 'train'?" in out


def test_finite_floats_are_enforced_by_the_ir_too():
    """Values that do not come from a front end (Python, a future one) meet the same rule."""
    from pydantic import ValidationError

    from composer.components.registry import get_kind
    from composer.spec.ir import Stage, Train

    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValidationError):
            Train(lr=bad)
        with pytest.raises(ValidationError):
            Stage(trains=["a"], losses={"ce": bad})
        with pytest.raises(ValidationError):
            get_kind("bottleneck_adapter").params.model_validate({"dim": 8, "scale": bad})


@pytest.mark.parametrize("where", ["text set", "text delete", "--set", "--unset"])
def test_a_dotted_path_deeper_than_the_limit_is_refused(tmp_path, where):
    """Each name of a dotted path is one mapping, made without a bracket or YAML nesting: 3000 names ended in a
    RecursionError (a traceback) in the merge instead of a located error."""
    names = ".".join(["a"] * 3000)
    if where.startswith("text"):
        statement = f"set train.{names} = 1" if where == "text set" else f"delete train.{names}"
        spec = write(tmp_path, "deep.comp", f'extends "clip-adapter"\n{statement}\n')
        out = _refused(str(spec), message="nests 3002 levels deep" if where == "text set" else "nests 3002")
        assert out.startswith(f"{spec}:2:")
    else:
        out = _refused("clip-adapter", where, f"train.{names}" + ("=1" if where == "--set" else ""),
                       message="(3001 names) nests")
        assert out.startswith(f"<{where} #1>:1:1: error:")
    assert f"at most {limits.MAX_DEPTH} nested mappings and lists" in out


def test_a_path_at_the_limit_is_accepted():
    """The bound counts a path's names and its value's levels together, as the YAML check counts nesting."""
    names = ("components", "adapter", "params", *["a"] * (limits.MAX_DEPTH - 4))
    limits.check_path(names, 1, None)  # 63 names and a scalar: 64 levels
    with pytest.raises(limits.SpecError, match="nests 65 levels deep"):
        limits.check_path(names, [1], None)


def test_a_wide_child_merges_onto_its_base_in_linear_time():
    """Merging located each replaced key by scanning every location of both documents: a child of 20 000
    keys took minutes. The locations are now found through the values themselves."""
    from composer.spec.merge import merge
    from composer.spec.yaml_front import read_yaml

    base = read_yaml("components:\n  a:\n    params:\n" + "".join(f"      k{i}: {i}\n" for i in range(20_000)),
                     "base.yaml", keep_comments=False)
    child = read_yaml("components:\n  a:\n    params:\n" + "".join(f"      k{i}: [{i}]\n" for i in range(20_000)),
                      "child.yaml", keep_comments=False)
    start = time.perf_counter()
    merged = merge(base, child)
    assert time.perf_counter() - start < BOUND_S
    assert merged.data["components"]["a"]["params"]["k7"] == [7]
    assert merged.where.values[("components", "a", "params", "k7", 0)].file == "child.yaml"
