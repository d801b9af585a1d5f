"""The check path without torch (graph/declared.py): `composer validate` reads declarations only, and what the
declarations say is what the build finds. Budget: about 30 s (every shipped spec built once on the meta device)."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import ROOT, SPECS, write

from composer.cli import main
from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.shipped_list import TRAINABLE, built_trainable
from composer.compiler.summary import parameter_counts
from composer.graph.declared import check_spec, declared_trainable
from composer.spec.digest import spec_digest
from composer.spec.load import load_spec
from composer.spec.shipped import shipped
from composer.viz.graph import to_dot, to_json, to_mermaid

HEAVY = ("torch", "open_clip", "timm", "transformers", "peft")


def test_validating_every_shipped_spec_imports_no_torch():
    """validate (every shipped spec), kinds, specs, fmt, diff, graph's text formats and the editor's check, in a
    fresh process."""
    script = f"""
import sys
from click.testing import CliRunner
from composer.cli import main
for path in {[str(p) for p in SPECS]!r}:
    result = CliRunner().invoke(main, ["validate", path])
    assert result.exit_code == 0, (path, result.output)
for command in (["kinds"], ["specs"], ["fmt", "msta", "--to", "text"], ["diff", "msta", "msta-few-shot"],
                *(["graph", "msta", "--format", f] for f in ("json", "mermaid", "dot"))):
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, (command, result.output)
from pathlib import Path
from composer.editor.check import check  # the language server's check of a buffer, as validate's
msta = Path("specs/papers/msta.yaml")
assert check(msta, msta.read_text()) == []
assert check(msta, msta.read_text().replace("dim: 256", "dim: -1"))
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_each_kind_is_declared_where_the_table_says():
    """composer/components/__init__.py names each kind's module: importing it registers that kind and no other,
    and checking a spec imports the declarations of the kinds it names only."""
    code = """import importlib, sys
from composer.components import DECLARED
from composer.components.registry import KINDS
for name, module in DECLARED.items():
    before = set(KINDS)
    importlib.import_module(module)
    assert set(KINDS) - before == {name}, (name, module)
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    probe = ("import sys; from composer.cli import main\ntry: main(['validate', 'clip-adapter'])\n"
             "except SystemExit: pass\nprint(sorted(m for m in sys.modules if m.startswith('composer.components.')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "composer.components.fusion.fusion_transformer" not in out and "composer.components.tap" not in out


def test_each_declared_family_module_registers_its_family():
    """composer/backbones/families/__init__.py names each family's declaration: importing it registers that
    family and no other (the registry imports them by this table, so no import runs back up to it)."""
    code = """import importlib
from composer.backbones.families import DECLARED
from composer.backbones.registry import FAMILIES
for name, module in DECLARED.items():
    before = set(FAMILIES)
    importlib.import_module(module)
    assert set(FAMILIES) - before == {name}, (name, module)
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.fixture(scope="module")
def built():
    """Every shipped spec (by name) with the model it builds at full size on the meta device."""
    return {name: compile_spec(load_spec(path), BuildOptions(device="meta")) for name, path in shipped().items()}


def test_what_the_declarations_say_trains_is_what_the_build_trains(built):
    for name, model in built.items():
        assert declared_trainable(check_spec(model.graph.spec)) == model.trainable_parts, name


def test_the_graph_drawn_from_declarations_is_the_built_one(built):
    """`composer graph` draws from the checked declarations (no torch): the same text as from the built model."""
    for name, model in built.items():
        declared = check_spec(model.graph.spec)
        for draw in (to_json, to_mermaid, to_dot):
            assert draw(declared, declared_trainable(declared)) == draw(model.graph, model.trainable_parts), name


def test_kept_trainable_counts_are_the_builds(built):
    """composer/compiler/shipped_trainable.json (what `composer specs` prints) against the builds."""
    kept = json.loads(TRAINABLE.read_text())
    assert sorted(kept) == sorted(built)
    for name, model in built.items():
        assert kept[name] == {"fingerprint": spec_digest(model.graph.spec),
                              "trainable_params": sum(p["trainable"] for p in parameter_counts(model).values())}, \
            f"{name}: run `python -c 'from composer.compiler.shipped_list import write_trainable; write_trainable()'`"


def test_an_edited_shipped_spec_is_counted_by_building_it():
    spec = load_spec("clip-adapter", ["components.adapter.params.dim=16"])
    kept = json.loads(TRAINABLE.read_text())["clip-adapter"]
    assert spec_digest(spec) != kept["fingerprint"] and built_trainable(spec) < kept["trainable_params"]


@pytest.mark.parametrize("frozen, message", [
    ('["vision_encoder", "text_encoder"]', None),  # ViCLIP's temperature still trains
    ('["vision_encoder", "text_encoder", "temp"]', "loss 'ce_loss' has nothing trainable upstream"),
    ('["*"]', "loss 'ce_loss' has nothing trainable upstream"),
])
def test_unfrozen_except_is_judged_by_the_declared_parameter_names(frozen, message):
    result = CliRunner().invoke(main, ["validate", "viclip-full-finetune", "--set",
                                       f"backbones.viclip.unfrozen_except={frozen}"])
    if message is None:
        assert result.exit_code == 0, result.output
        model = compile_spec(load_spec("viclip-full-finetune", [f"backbones.viclip.unfrozen_except={frozen}"]))
        assert "viclip" in model.trainable_parts
    else:
        assert result.exit_code == 2 and message in result.output


def test_params_only_the_built_tower_can_check_are_checked_by_building(tmp_path):
    """CoOp's init words are counted by the text tower's tokenizer: validate builds on the meta device for them."""
    spec = write(tmp_path, "coop.yaml", """extends: clip-zero-shot
components:
  ctx: {kind: text_context, site: clip.text.embed, params: {init: "a photo of a", tokens: 3}}
""")
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2
    assert "component 'ctx': init 'a photo of a' is 4 tokens but tokens=3" in result.output
