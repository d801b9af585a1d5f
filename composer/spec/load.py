"""Reading a spec from disk: front end by file suffix, `extends`, `--set`, then validation into the IR.

Wherever a spec file is named (a command's SPEC, `extends:`), a shipped spec's name works too (shipped.py).
"""

from __future__ import annotations

import re
import typing
from pathlib import Path as FsPath
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from composer.errors import MAX_SHOWN, Loc, Problem, SpecError, cut, did_you_mean, remember_source
from composer.spec import limits
from composer.spec.document import DELETE, Document, Path, SourceMap
from composer.spec.ir import SPEC_NAME_HINT, Node, Spec, spec_name_from
from composer.spec.merge import merge, set_path, unset_path
from composer.spec.shipped import ROOT, locate, shipped
from composer.spec.text_front import read_text
from composer.spec.yaml_front import read_yaml, read_yaml_value

YAML_SUFFIXES = (".yaml", ".yml")
TEXT_SUFFIXES = (".comp",)


def read_document(spec: str | FsPath, loc: Loc | None = None, keep_comments: bool = True,
                  text: str | None = None) -> Document:
    """Read one spec file (a path, or a shipped name), without following `extends`; `loc` is where it was named.
    `keep_comments`: also collect comments and number spellings for `fmt` (the compiler never reads them).
    `text`: the file's text as an editor holds it (unsaved, or not on disk yet), read instead of the file."""
    path = FsPath(spec) if text is not None else locate(spec)
    shown = str(path)
    if loc is None:  # the spec named on the command line: point at the argument, never read the file to quote it
        remember_source("<SPEC>", shown)
        loc = Loc("<SPEC>", 1, 1, max(1, len(shown)))
    if text is None:
        limits.check_file(path, loc)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"cannot read spec file {shown}: {e}") from None
    remember_source(shown, text)
    if path.suffix in YAML_SUFFIXES:
        return read_yaml(text, shown, keep_comments)
    if path.suffix in TEXT_SUFFIXES:
        return read_text(text, shown, keep_comments)
    raise SpecError(f"unknown spec file type '{path.suffix}' for {shown}",
                    expected="a .yaml/.yml file or a .comp file (the text syntax)")


def resolve_document(spec: str | FsPath, _chain: tuple[FsPath, ...] = (), text: str | None = None) -> Document:
    """Read a spec file (a path, or a shipped name) and everything it `extends`, merged (docs/language.md,
    "Inheritance"). A base must be a regular file inside an allowed root (`allowed_roots`), and a chain has
    at most limits.MAX_EXTENDS files. `text`: the first file's text, as read_document takes it."""
    path = FsPath(spec) if text is not None else locate(spec)
    here = path.resolve()
    doc = read_document(path, keep_comments=False, text=text)
    base_name = doc.data.pop("extends", None)
    extends_loc = doc.where.value(("extends",))
    if base_name is None:
        return doc
    if not isinstance(base_name, str) or not base_name:
        raise SpecError("'extends' must be the path of another spec file or a shipped name", extends_loc)
    if len(_chain) + 2 > limits.MAX_EXTENDS:
        raise SpecError(f"'extends' chain longer than {limits.MAX_EXTENDS} files", extends_loc,
                        hint="a spec extends at most a handful of others; check for a generated chain")
    base_path = path.parent / base_name
    if not _exists(base_path) and base_name in shipped():
        base_path = shipped()[base_name]
    if not _exists(base_path) and not base_path.is_symlink():
        raise SpecError(f"the spec this one extends does not exist: {base_path}", extends_loc,
                        hint="paths in 'extends' are relative to the file that names them; a shipped name "
                        "(`composer specs`) works too")
    limits.check_file(base_path, extends_loc, "the spec this one extends,")
    resolved = base_path.resolve()
    roots = allowed_roots(_chain[0] if _chain else here)
    if not limits.within(resolved, roots):
        raise SpecError(f"'extends' names a file outside the allowed folders: {resolved}", extends_loc,
                        expected="a file under " + ", ".join(str(r) for r in roots),
                        hint="a base must be under the first spec's folder, the current folder, or be a "
                        "shipped spec (docs/language.md, Limits)")
    if resolved in _chain + (here,):
        loop = " -> ".join(p.name for p in _chain + (here, resolved))
        raise SpecError(f"inheritance loop: {loop}", extends_loc, hint="a spec cannot extend itself, even indirectly")
    return merge(resolve_document(base_path, _chain + (here,)), doc)


def allowed_roots(first: FsPath) -> list[FsPath]:
    """Where an `extends` base may live: under the folder of the spec named on the command line, under the
    current folder, or among the shipped specs. A spec from elsewhere cannot make composer read arbitrary files."""
    return [first.resolve().parent, FsPath.cwd().resolve(), ROOT.resolve()]


def _exists(path: FsPath) -> bool:
    try:
        return path.exists()
    except OSError:  # a symlink loop on some Pythons
        return True  # let check_file say what is wrong


def _set_document(text: str, index: int, option: str = "--set") -> tuple[Path, Any, Loc]:
    file = f"<{option} #{index}>"
    remember_source(file, text)
    if "=" not in text:
        raise SpecError(f"{option} needs path=value, got {cut(text)!r}", Loc(file, 1, 1, max(1, len(text))),
                        expected="e.g. --set components.adapter.params.dim=128")
    key, raw = text.split("=", 1)
    loc = Loc(file, 1, 1, max(1, len(key)))
    path = _override_path(key, loc, option)
    value = read_yaml_value(raw, file, text, col=len(key) + 2)
    if value is DELETE:
        raise SpecError(f"use {option.replace('set', 'unset', 1)} PATH to remove a key", loc)
    limits.check_path(path, value, loc)
    return path, value, loc


def _override_path(key: str, loc: Loc, option: str) -> Path:
    """The dotted path of a --set or --unset: names only, no deeper than limits.MAX_DEPTH, and not
    `extends` (read from the file before any option applies: setting it would silently do nothing)."""
    path = tuple(key.strip().split("."))
    limits.check_path(path, None, loc)  # before the names are checked or the value read
    if not all(p.isidentifier() for p in path):
        raise SpecError(f"bad {option} path {cut(key)!r}", loc, expected="dot-separated names such as train.lr")
    if path[0] == "extends":
        raise SpecError(f"{option} cannot change `extends`: a spec's base is read from its file before any option "
                        "applies", loc, hint="write a spec that extends the base you want (one line: extends: BASE)")
    return path


def apply_overrides(doc: Document, sets: Iterable[str] = (), unsets: Iterable[str] = (),
                    option: str = "--set") -> Document:
    """`--set` then `--unset` options, in order. `option` names them in locations (`<--set #1>:1:1`);
    `composer diff` passes --set-a or --set-b for the options of one side. At most limits.MAX_OVERRIDES of
    them: each one that creates a key is compared with its siblings for a "did you mean" hint."""
    unset_option = option.replace("set", "unset", 1)
    sets, unsets = list(sets), list(unsets)
    if len(sets) + len(unsets) > limits.MAX_OVERRIDES:
        raise SpecError(f"{len(sets)} {option} and {len(unsets)} {unset_option} options, more than "
                        f"{limits.MAX_OVERRIDES}", expected=f"at most {limits.MAX_OVERRIDES}",
                        hint="write the changes into a spec that extends this one")
    for i, text in enumerate(sets, 1):
        path, value, loc = _set_document(text, i, option)
        hint = set_path(doc, path, value, loc)
        if hint:
            doc.hints[loc.file] = hint
    for i, text in enumerate(unsets, 1):
        file = f"<{unset_option} #{i}>"
        remember_source(file, text)
        loc = Loc(file, 1, 1, max(1, len(text)))
        unset_path(doc, _override_path(text, loc, unset_option), loc)
    return doc


# ---------------------------------------------------------------- validation
def _model_at(path: Path) -> type[BaseModel] | None:
    """The IR model class found at `path` (dict keys are stepped over), or None."""
    model: Any = Spec
    keys = iter(path)
    for key in keys:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(key) or next(
            (f for f in model.model_fields.values() if f.alias == key), None)
        if field is None:
            return None
        model = _unwrap(field.annotation)
        if typing.get_origin(model) is dict:
            model = _unwrap(typing.get_args(model)[1])
            if next(keys, None) is None:
                return None
        if isinstance(model, tuple):
            return None
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tuple(args)
    return annotation


def _data_path(data: Any, loc: tuple) -> Path:
    """Map a pydantic error location to a path in the data (skipping union tags pydantic inserts)."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and part not in node and part == loc[-1]:
            out.append(part)  # a missing field: point at its parent
        # else: a union tag or a model name inserted by pydantic; skip it
    return tuple(out)


def _problem(err: dict, data: dict, where: SourceMap) -> Problem:
    path = _data_path(data, err["loc"])
    dotted = ".".join(map(str, path)) or "(spec)"
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(path[:-1])
        allowed = sorted(f.alias or n for n, f in model.model_fields.items()) if model else []
        return Problem(f"unknown key '{path[-1]}' in {'.'.join(map(str, path[:-1])) or 'the spec'}",
                       where.key(path), expected=", ".join(allowed) if allowed else None,
                       hint=did_you_mean(path[-1], allowed))
    if kind == "missing":
        present = path[:-1] if path and path[-1] not in _walk(data, path[:-1]) else path
        return Problem(f"'{path[-1]}' is required in {'.'.join(map(str, present)) or 'the spec'}",
                       where.value(present))
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        ctx = err.get("ctx", {})
        return Problem(f"{dotted}: {err['msg']}", where.value(path + ("kind",)) or where.value(path),
                       expected=str(ctx.get("expected_tags", "")) or None)
    given = _walk(data, path)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        return Problem(f"{dotted}: {cut(repr(given))} is not allowed", where.value(path),
                       expected=", ".join(choices), hint=did_you_mean(given, choices))
    if path == ("name",) and kind in ("string_pattern_mismatch", "string_too_long"):
        return Problem(f"name: {cut(repr(given))} cannot name a run folder", where.value(path), hint=SPEC_NAME_HINT)
    shown = f" (got {cut(repr(given))})" if not isinstance(given, (dict, list)) and given is not None else ""
    return Problem(f"{dotted}: {err['msg'].lower()}{shown}", where.value(path))


def _walk(data: Any, path: Path) -> Any:
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and isinstance(key, int) and key < len(data):
            data = data[key]
        else:
            return {}
    return data


def _stamp(node: Any, where: SourceMap, path: Path) -> None:
    """Give every IR node the location it was read from."""
    if isinstance(node, Node):
        node._loc = where.value(path)
        for name, field in type(node).model_fields.items():
            _stamp(getattr(node, name), where, path + (field.alias or name,))
    elif isinstance(node, dict):
        for k, v in node.items():
            _stamp(v, where, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _stamp(v, where, path + (i,))


def validate(doc: Document) -> Spec:
    """Validate a merged document into the IR; every error names its place in the spec."""
    data = {k: v for k, v in doc.data.items() if k != "extends"}
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        problems = [_problem(err, data, doc.where) for err in errors[:MAX_SHOWN]]
        problems += [Problem(err["msg"]) for err in errors[MAX_SHOWN:]]  # counted, not shown
        for p in problems:
            if p.loc is not None and p.hint is None and p.loc.file in doc.hints:
                p.hint = doc.hints[p.loc.file]
        raise SpecError(problems) from None
    _stamp(spec, doc.where, ())
    spec._where = doc.where
    spec._file = doc.file
    limits.check_sizes(spec)
    return spec


def defaults() -> Document:
    """What every spec starts from: the three standard inputs (a spec may override or delete them)."""
    data = {"inputs": {"video": {"kind": "video"}, "class_names": {"kind": "classes"}, "label": {"kind": "label"}}}
    return Document(data, SourceMap(), "<defaults>")


def load_spec(spec: str | FsPath, sets: Iterable[str] = (), unsets: Iterable[str] = (),
              side: tuple[str, Iterable[str], Iterable[str]] | None = None, text: str | None = None) -> Spec:
    """The one entry point: file (YAML or text; a path or a shipped name) -> merged document -> validated IR.
    `side`: (option, sets, unsets) applied after the shared `sets` and `unsets`, located under that option's
    name, e.g. ("--set-b", [...], [...]) for one side of `composer diff`. `text`: the file's text as an editor
    holds it (composer lsp), read instead of the file."""
    path = FsPath(spec) if text is not None else locate(spec)
    doc = apply_overrides(merge(defaults(), resolve_document(path, text=text)), sets, unsets)
    if side is not None:
        doc = apply_overrides(doc, side[1], side[2], side[0])
    if doc.data.get("name") is None:
        doc.data["name"] = spec_name_from(path.stem)
    return validate(doc)
