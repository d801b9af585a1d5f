"""The specs shipped with composer, by name: `composer build msta` reads specs/papers/msta.yaml.

A name is a file's stem, unique across specs/papers, specs/papers/ablations and specs/baselines (a test
checks), so a user never needs to know which folder a spec lives in, the way timm resolves model names.
The folder is package data (composer/specs links to the top-level specs/, see pyproject.toml), so names
work the same from a source checkout, an editable install and a wheel. A file that exists always wins
over a name; when a name has both syntaxes (x.yaml and x.comp), the YAML file is the name's spec.
"""

from __future__ import annotations

import difflib
import functools
import os
from importlib import resources
from pathlib import Path

from composer.errors import Loc, SpecError, remember_source

SUFFIXES = (".yaml", ".yml", ".comp")  # in order of preference for one name
ROOT = Path(resources.files("composer")) / "specs"  # composer is installed as files (torch cannot run zipped)


@functools.cache
def shipped() -> dict[str, Path]:
    """Every shipped spec: name -> file (the YAML one where a name has both syntaxes), sorted by name."""
    files = sorted((p for p in ROOT.rglob("*") if p.suffix in SUFFIXES), key=lambda p: SUFFIXES.index(p.suffix))
    names: dict[str, Path] = {}
    for path in files:
        names.setdefault(path.stem, path.resolve())
    return dict(sorted(names.items()))


def locate(spec: str | Path) -> Path:
    """The file `spec` names: an existing path as given, else a shipped name; neither is a located error."""
    path, text = Path(spec), str(spec)
    if path.is_file():
        return path
    if text in shipped():
        return shipped()[text]
    if os.path.lexists(path):
        return path  # a folder, a device, a FIFO, a broken link: the reader says which (limits.check_file)
    looks_like_a_path = path.suffix in SUFFIXES or len(path.parts) > 1
    message = f"spec file not found: {text}" if looks_like_a_path else f"no spec file or shipped spec named '{text}'"
    where = "<SPEC>"
    remember_source(where, text)
    raise SpecError(message, Loc(where, 1, 1, max(1, len(text))),
                    expected="the path of a .yaml/.yml/.comp file, or a shipped name (`composer specs` lists them)",
                    hint=suggest(text))


def suggest(text: str) -> str | None:
    """A 'did you mean' hint: shipped names that contain `text` or are close to it (at most five)."""
    stem = Path(text).stem
    names = list(shipped())
    close = [n for n in names if stem and stem in n] + difflib.get_close_matches(stem, names, n=5, cutoff=0.6)
    close = list(dict.fromkeys(close))[:5]
    return "did you mean " + ", ".join(f"'{n}'" for n in close) + "?" if close else None
