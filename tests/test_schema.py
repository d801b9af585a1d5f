"""`composer schema`: the JSON Schema of a YAML spec validates every shipped spec and refuses every spec of the
broken corpus that is wrong in structure (budget: about 5 s once composer's registries are imported)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, SPECS
from jsonschema import Draft202012Validator

from composer.cli import main
from composer.editor.schema import SHIPPED, dumps, generate
from composer.errors import SpecError
from composer.spec.document import DELETE
from composer.spec.yaml_front import read_yaml

YAML_SPECS = [p for p in SPECS if p.suffix in (".yaml", ".yml")]
CORPUS = sorted((ROOT / "tests" / "corpus" / "broken").glob("yaml_*.yaml"))

# Broken specs whose YAML is a well-formed spec: what is wrong needs another file (`extends`), the backbones
# built (layers, widths, shapes), the graph (names, types, gradients) or composer's size limits. A JSON Schema
# cannot see these; `composer validate` (and the language server) report them.
SEMANTIC = {
    "yaml_attach_without_site.yaml": "an attaching kind may instead be called in the flow",
    "yaml_cycle.yaml": "the flow graph",
    "yaml_delete_not_inherited.yaml": "the file `extends` names",
    "yaml_delta_on_fused_slice.yaml": "the backbone's modules",
    "yaml_dtype_mismatch.yaml": "the flow's tensor types",
    "yaml_extends_device.yaml": "the file `extends` names",
    "yaml_extends_directory.yaml": "the file `extends` names",
    "yaml_extends_missing.yaml": "the file `extends` names",
    "yaml_extends_outside_roots.yaml": "the file `extends` names",
    "yaml_heads_do_not_divide.yaml": "the backbone's width",
    "yaml_huge_adapter.yaml": "the memory a size needs (limits.py)",
    "yaml_huge_batch.yaml": "the memory a batch needs (limits.py)",
    "yaml_image_size.yaml": "the backbone's patch size",
    "yaml_int_out_of_range.yaml": "composer's integer bound (limits.py)",
    "yaml_layer_out_of_range.yaml": "the tower's depth",
    "yaml_loop_a.yaml": "the file `extends` names",
    "yaml_loop_b.yaml": "the file `extends` names",
    "yaml_loss_not_scalar.yaml": "the flow's tensor types",
    "yaml_loss_weight_nan.yaml": "JSON has no nan: finiteness is composer's reader's",
    "yaml_loss_without_trainable.yaml": "the graph's gradients",
    "yaml_lr_inf.yaml": "JSON has no inf: finiteness is composer's reader's",
    "yaml_name_clash.yaml": "names across sections",
    "yaml_no_gradient.yaml": "the graph's gradients",
    "yaml_orphan_tensor.yaml": "the flow graph",
    "yaml_predict_not_scores.yaml": "the flow's tensor types",
    "yaml_shape_mismatch.yaml": "the flow's tensor types",
    "yaml_site_conflict.yaml": "two components' sites",
    "yaml_site_unknown_backbone.yaml": "the spec's backbone names",
    "yaml_site_unknown_tower.yaml": "the family's towers",
    "yaml_template_without_slot.yaml": "a parameter's text",
    "yaml_undefined_tensor.yaml": "the flow graph",
    "yaml_unknown_callee.yaml": "the spec's component names",
    "yaml_unknown_tower_output.yaml": "the family's towers",
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SHIPPED.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _data(path):
    """The spec as composer's YAML front end reads it (YAML 1.2 numbers), `!delete` read as null."""
    def plain(value):
        if value is DELETE:
            return None
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, list) else value
    return plain(read_yaml(path.read_text(encoding="utf-8"), str(path), keep_comments=False).data)


def test_the_shipped_schema_is_what_composer_schema_writes():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    assert result.output == SHIPPED.read_text(encoding="utf-8") == dumps(generate()), \
        "composer/editor/spec.schema.json is stale: run composer schema -o composer/editor/spec.schema.json"


def test_the_schema_is_discriminated_and_enumerates_the_registries(validator):
    schema = validator.schema
    components = schema["$defs"]["Spec"]["properties"]["components"]["patternProperties"]
    union = next(iter(components.values()))
    assert union["discriminator"]["propertyName"] == "kind" and "lora" in union["discriminator"]["mapping"]
    lora = schema["$defs"]["kind_lora"]["properties"]
    assert lora["use"]["anyOf"][0]["const"] == "weight_delta" and "attn.qkv" in lora["site"]["description"]
    assert schema["$defs"]["family_clip"]["properties"]["size"]["enum"][-1] == "tiny"
    assert "bottleneck width r" in json.dumps(schema["$defs"]["BottleneckParams"])


@pytest.mark.parametrize("path", YAML_SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_validates(validator, path):
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(_data(path))]
    assert not errors, errors


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_broken_spec_fails_the_schema_when_its_structure_is_wrong(validator, path):
    try:
        data = _data(path)
    except SpecError:  # refused by composer's reader (syntax, tags, duplicate keys, depth, size, numbers)
        return
    errors = list(validator.iter_errors(data))
    if path.name in SEMANTIC:
        assert not errors, f"{path.name} now fails the schema: take it out of SEMANTIC"
    else:
        assert errors, f"{path.name} is wrong in structure but passes the schema"


def test_a_misspelt_key_of_a_spec_that_extends_still_fails(validator):
    assert list(validator.iter_errors({"extends": "msta", "components": {"msta": {"parms": {"dim": 8}}}}))
    assert not list(validator.iter_errors({"extends": "msta", "components": {"msta": {"params": {"dim": 8}}}}))


CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))  # pinned, in the venv


def test_check_jsonschema_validates_the_shipped_specs_without_delete():
    # check-jsonschema's YAML reader refuses a tag it does not know, so specs with `!delete` are checked above only
    plain = [str(p) for p in YAML_SPECS if "!delete" not in p.read_text(encoding="utf-8")]
    assert CHECK_JSONSCHEMA, "check-jsonschema (requirements.txt) is not installed beside this Python"
    result = subprocess.run([CHECK_JSONSCHEMA, "--schemafile", str(SHIPPED), *plain],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(plain) >= 20
