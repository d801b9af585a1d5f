"""Kinds and families from other packages (composer/plugins.py): found through entry points without importing
them, loaded when a spec names them, and a broken one refused in one line naming its package while composer's
own kinds keep working. Each test puts packages of its own on sys.path as installed metadata (a .dist-info
folder with entry_points.txt, as pip leaves it); tests/test_plugin_example.py installs the real example with pip.
Budget: about 5 s on 2 cores (no model is built but by the check-kind test: two tiny CLIP builds)."""

import sys

import pytest
from click.testing import CliRunner

from composer.backbones.registry import PLUGINS as FAMILY_PLUGINS
from composer.backbones.registry import get_family
from composer.cli import main
from composer.components.registry import PLUGINS, get_kind
from composer.errors import SpecError

TINY = ("--set", "backbones.clip.size=tiny")


def install(root, package: str, points: dict[str, dict[str, str]], module: str, source: str) -> None:
    """A package installed as metadata only: `points` is {group: {name: "module:attribute"}}."""
    info = root / f"{package.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n"
                                   f"Summary: {package}, a test plugin\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in names.items())
        for group, names in points.items()))
    (root / f"{module}.py").write_text(source)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path whose packages the registries read afresh; forgotten again afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    PLUGINS.rescan()
    FAMILY_PLUGINS.rescan()
    before = set(sys.modules)
    yield tmp_path
    PLUGINS.rescan()
    FAMILY_PLUGINS.rescan()
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and sys.modules[name].__file__.startswith(str(tmp_path)):
            del sys.modules[name]


NEVER = "raise RuntimeError('imported, though nothing needed it')\n"
SSF_LIKE = """
import torch
from composer.components.registry import Kind, NoParams

class Scale(torch.nn.Module):
    def __init__(self, width, dead):
        super().__init__()
        self.scale, self.dead = torch.nn.Parameter(torch.ones(width)), dead

    def forward(self, x, ctx=None):
        return x + 0 * self.scale.sum() if self.dead else x * self.scale

KIND = Kind(name="scaler", summary="scales", params=NoParams, build=lambda p, s: Scale(s.out_dim, False),
            uses=("sequential",), points=("mlp",))
DEAD = Kind(name="dead_scaler", summary="never learns", params=NoParams, build=lambda p, s: Scale(s.out_dim, True),
            uses=("sequential",), points=("mlp",))
"""


def _uses(kind: str) -> tuple[str, ...]:
    """clip-adapter with its adapter swapped for `kind`, at tiny size."""
    return ("clip-adapter", *TINY, "--set", f"components.adapter.kind={kind}",
            "--set", "components.adapter.use=sequential", "--unset", "components.adapter.params")


def test_kinds_lists_plugins_with_their_package_without_importing_them(site):
    install(site, "plug-kinds", {"composer.kinds": {"odd_adapter": "plug_kinds:KIND"},
                                 "composer.families": {"odd_vit": "plug_kinds:FAMILY"}}, "plug_kinds", NEVER)
    result = CliRunner().invoke(main, ["kinds"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "odd_adapter" in line or "odd_vit" in line]
    assert len(rows) == 2 and all("plug-kinds 1.0" in row and "not imported yet" in row for row in rows)
    assert "bottleneck_adapter" in result.output and "composer-video" in result.output
    assert "plug_kinds" not in sys.modules


def test_a_plugin_that_raises_on_import_is_refused_in_one_line_and_composers_kinds_still_work(site):
    install(site, "broken-kinds", {"composer.kinds": {"odd_adapter": "broken_kinds:KIND"},
                                   "composer.families": {"odd_vit": "broken_kinds:FAMILY"}},
            "broken_kinds", "import a_module_that_is_not_there\n")
    result = CliRunner().invoke(main, ["validate", *_uses("odd_adapter")])
    assert result.exit_code == 2
    line = ("error: kind 'odd_adapter' of package broken-kinds 1.0 raises on import: ModuleNotFoundError: "
            "No module named 'a_module_that_is_not_there'; refused")
    assert [ln for ln in result.output.splitlines() if "error:" in ln] == [f"<--set #2>:1:1: {line}"], result.output
    with pytest.raises(SpecError, match="backbone family 'odd_vit' of package broken-kinds 1.0 raises on import"):
        get_family("odd_vit")
    assert CliRunner().invoke(main, ["validate", "clip-adapter", *TINY]).exit_code == 0  # ours: untouched


def test_a_plugin_offering_a_name_composer_has_is_refused_in_one_line_and_ours_is_used(site, caplog):
    """The refusal is logged on composer.plugins: with no handler (the command line), Python prints it alone
    on stderr."""
    install(site, "dup-kinds", {"composer.kinds": {"lora": "dup_kinds:KIND"},
                                "composer.families": {"clip": "dup_kinds:FAMILY"}}, "dup_kinds", NEVER)
    result = CliRunner().invoke(main, ["kinds"])
    assert result.exit_code == 0
    assert "dup-kinds" not in result.output  # not listed as a kind or a family
    refusals = [r.getMessage() for r in caplog.records if r.name == "composer.plugins"]
    assert refusals == ["composer: package dup-kinds 1.0 offers kind 'lora', which composer already has; refused "
                        "(composer's own is used)",
                        "composer: package dup-kinds 1.0 offers backbone family 'clip', which composer already has; "
                        "refused (composer's own is used)"]
    assert CliRunner().invoke(main, ["validate", "clip-lora", *TINY]).exit_code == 0
    assert get_kind("lora").build.__module__ == "composer.components.adapters.lora"
    assert "dup_kinds" not in sys.modules


def test_a_plugin_family_loads_when_a_spec_names_it(site):
    install(site, "again-pkg", {"composer.families": {"clip_again": "again_pkg:FAMILY"}}, "again_pkg",
            "import dataclasses\nfrom composer.backbones.registry import get_family\n"
            "FAMILY = dataclasses.replace(get_family('clip'), name='clip_again', summary='CLIP once more')\n")
    result = CliRunner().invoke(main, ["validate", "clip-adapter", *TINY, "--set", "backbones.clip.family=clip_again"])
    assert result.exit_code == 0, result.output
    assert FAMILY_PLUGINS.package_of("clip_again") == "again-pkg 1.0"
    row = next(line for line in CliRunner().invoke(main, ["kinds"]).output.splitlines() if "clip_again" in line)
    assert "again-pkg 1.0" in row and "ViT-B/16" in row and "CLIP once more" in row  # loaded: its own summary


def test_two_packages_offering_one_name_are_both_refused(site):
    for package in ("one-pkg", "two-pkg"):
        install(site, package, {"composer.kinds": {"scaler": f"{package.replace('-', '_')}:KIND"}},
                package.replace("-", "_"), SSF_LIKE)
    with pytest.raises(SpecError) as e:
        get_kind("scaler")
    assert str(e.value) == "error: packages one-pkg 1.0 and two-pkg 1.0 both offer kind 'scaler'; both refused"


@pytest.mark.parametrize("value, why", [
    ("plug_wrong:NUMBER", "points at plug_wrong:NUMBER, which is an object of type int, not a Kind"),
    ("plug_wrong:KIND", "points at plug_wrong:KIND, which is a Kind named 'scaler'"),
])
def test_an_entry_point_to_anything_but_its_kind_is_refused(site, value, why):
    install(site, "wrong-kinds", {"composer.kinds": {"other_name": value}}, "plug_wrong", SSF_LIKE + "NUMBER = 3\n")
    with pytest.raises(SpecError) as e:
        get_kind("other_name")
    assert str(e.value) == f"error: kind 'other_name' of package wrong-kinds 1.0 {why}; refused"
    assert get_kind("bottleneck_adapter").name == "bottleneck_adapter"


def test_a_plugin_kind_loads_when_named_and_check_kind_finds_a_dead_part(site):
    install(site, "scale-kinds", {"composer.kinds": {"scaler": "scale_kinds:KIND", "dead_scaler": "scale_kinds:DEAD"}},
            "scale_kinds", SSF_LIKE)
    assert "scale_kinds" not in sys.modules
    assert get_kind("scaler").summary == "scales" and PLUGINS.package_of("scaler") == "scale-kinds 1.0"
    result = CliRunner().invoke(main, ["check-kind", "dead_scaler", "--family", "dinov2"])  # one tower: one build
    assert result.exit_code == 1
    assert "contract broken:" in result.output
    assert "no gradient (dead part)" in result.output, result.output


def test_check_kind_refuses_what_it_cannot_check():
    result = CliRunner().invoke(main, ["check-kind", "cross_entropy"])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == ("error: 'cross_entropy' is called in the flow; the contract covers "
                                             "kinds attached at a site")
    assert CliRunner().invoke(main, ["check-kind", "bottleneck_adapter", "--family", "clop"]).exit_code == 2
