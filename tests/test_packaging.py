"""A wheel built from the repository works on its own: grammar and shipped specs inside, specs by name.

The wheel is built from a copy of the sources (so the repository gets no build/ or egg-info), installed
into a scratch folder and run from a directory outside the repository, with only that folder on the path.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, SPECS


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("composer", "grammar", "specs"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    "."], cwd=src, check=True, capture_output=True)
    return next(out.glob("*.whl"))


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return target


def test_wheel_holds_the_grammar_and_every_shipped_spec(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"composer/grammar/site.lark", "composer/grammar/spec.lark"} <= names
    expected = {f"composer/specs/{p.relative_to(ROOT / 'specs').as_posix()}" for p in SPECS}
    assert expected and expected <= names
    folder = ROOT / "composer" / "backbones" / "demo-weights"
    weights = {f"composer/backbones/demo-weights/{p.name}" for p in folder.iterdir()}
    assert "composer/backbones/demo-weights/manifest.json" in weights and weights <= names  # --weights demo
    assert "composer/editor/spec.schema.json" in names  # the schema editors read (composer schema)


def _composer(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(site / "bin" / "composer"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_installed_wheel_runs_on_its_own(site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import composer; print(composer.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).resolve().is_relative_to(site.resolve())

    version = _composer(site, tmp_path, "--version")
    assert version.returncode == 0 and "0.1.0" in version.stdout, version.stderr

    ok = _composer(site, tmp_path, "validate", "clip-zero-shot")
    assert ok.returncode == 0 and "clip-zero-shot: ok" in ok.stdout, ok.stderr
    text = _composer(site, tmp_path, "fmt", str(site / "composer" / "specs" / "papers" / "msta.comp"), "--to", "yaml")
    assert text.returncode == 0 and "name: msta" in text.stdout, text.stderr  # the text grammar ships too

    built = _composer(site, tmp_path, "build", "msta-few-shot", "--json", "--no-flops")  # extends msta.yaml
    assert built.returncode == 0, built.stderr
    info = json.loads(built.stdout)
    assert info["name"] == "msta-few-shot" and info["trainable_params"] == 1_744_000

    unknown = _composer(site, tmp_path, "build", "msta-fewshot")
    assert unknown.returncode == 2 and "did you mean 'msta-few-shot'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
