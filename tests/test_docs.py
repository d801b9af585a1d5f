"""The docs describe the language as built: the worked example builds, and the catalogue is current."""

import re

from click.testing import CliRunner
from conftest import ROOT, write

from composer.cli import main
from composer.compiler.compile import compile_spec
from composer.compiler.summary import parameter_counts
from composer.spec.load import load_spec

LANGUAGE = (ROOT / "docs" / "language.md").read_text()


def test_worked_example_is_the_same_spec_in_both_syntaxes(tmp_path):
    blocks = re.findall(r"```(yaml|)\n(.*?)```", LANGUAGE, re.S)
    yaml_src = next(body for lang, body in blocks if lang == "yaml" and "clip-adapter-top" in body)
    text_src = next(body for lang, body in blocks if lang == "" and "clip-adapter-top" in body)
    a = load_spec(write(tmp_path, "a.yaml", yaml_src))
    b = load_spec(write(tmp_path, "b.comp", text_src))
    assert a.model_dump() == b.model_dump()
    model = compile_spec(a)
    assert parameter_counts(model)["adapter"]["trainable"] == 5 * (768 * 64 + 64 + 64 * 768 + 768)  # "496k"
    assert model.plan.grad_from["clip.visual(video)"] == 7  # "blocks 1-7 run without autograd"


def test_component_catalogue_is_generated_from_the_registry():
    result = CliRunner().invoke(main, ["kinds", "--markdown"])
    assert result.output == (ROOT / "docs" / "components.md").read_text(), \
        "docs/components.md is stale: run composer kinds --markdown > docs/components.md"
