"""examples/plugin/ is a real plugin: pip installs it (offline, into a scratch folder on sys.path, from a copy so
the repository gets no build/ or egg-info), `composer kinds` lists it without importing it, a spec uses its
kind, `composer schema` knows its params, and its own test (the contract composer's kinds pass) passes.
Budget: about 10 s on 2 cores (pip about 2 s of it; the contract builds tiny CLIP twice)."""

import importlib.util
import json
import shutil
import subprocess
import sys

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import ROOT

from composer.backbones.registry import PLUGINS as FAMILY_PLUGINS
from composer.cli import main
from composer.components.registry import PLUGINS

EXAMPLE = ROOT / "examples" / "plugin"
WIDTH, LAYERS = 64, 12  # tiny CLIP's width and depth: tiny keeps the depth, shrinks the width to 64


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example pip-installed into a scratch target that is on sys.path for this module's tests."""
    src = tmp_path_factory.mktemp("src") / "plugin"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    target = tmp_path_factory.mktemp("target")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "--target", str(target), str(src)], check=True, capture_output=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(target))
        PLUGINS.rescan()
        FAMILY_PLUGINS.rescan()
        yield target
    PLUGINS.rescan()
    FAMILY_PLUGINS.rescan()
    sys.modules.pop("composer_ssf", None)


def test_kinds_lists_the_example_without_importing_it(installed):
    result = CliRunner().invoke(main, ["kinds"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.lstrip().startswith("ssf "))
    assert "composer-ssf 0.1.0" in row and "not imported yet" in row
    assert "composer_ssf" not in sys.modules


def test_a_spec_uses_the_plugin_kind(installed):
    result = CliRunner().invoke(main, [
        "build", "clip-adapter", "--size", "tiny", "--no-flops", "--json", "--set", "components.adapter.kind=ssf",
        "--set", "components.adapter.use=sequential", "--set", "components.adapter.params={init_scale: 0.5}"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["trainable_params"] == LAYERS * 2 * WIDTH  # a scale and a shift per channel, in every block
    assert [(a["kind"], a["layers"]) for a in info["attachments"]] == [("ssf", list(range(1, LAYERS + 1)))]


def test_composer_schema_includes_the_plugins_params(installed, tmp_path):
    out = tmp_path / "spec.schema.json"
    assert CliRunner().invoke(main, ["schema", "-o", str(out)]).exit_code == 0
    schema = json.loads(out.read_text())
    params = schema["$defs"]["kind_ssf"]["properties"]["params"]
    assert set(schema["$defs"][params["$ref"].split("/")[-1]]["properties"]) == {"init_scale", "shift"}
    spec = {"backbones": {"clip": {"family": "clip", "size": "tiny"}},
            "components": {"s": {"kind": "ssf", "site": "clip.visual.blocks[*].mlp", "params": {"init_scale": 2.0}}},
            "flow": {"v": {"call": "clip.visual", "in": ["video"]}}, "predict": "v"}
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(spec))
    spec["components"]["s"]["params"] = {"init_scal": 2.0}
    assert list(validator.iter_errors(spec))


def test_the_examples_own_test_passes(installed):
    path = EXAMPLE / "tests" / "test_ssf.py"
    module_spec = importlib.util.spec_from_file_location("example_test_ssf", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    module.test_ssf_keeps_composers_attachment_contract()
