"""Writing a spec document back out, as YAML or in the text syntax (`composer fmt`).

Both writers take the document as written (before inheritance is applied), so `extends`, partial
overrides and deletions survive a conversion; text -> YAML -> text gives the same document and IR.
Entries the text statements cannot express whole (a partial override, a deletion) become `set` and
`delete` lines, so nothing is ever dropped.

What a person wrote beside the data comes back too: comments (attached by the front ends to the entry
they precede or end, see comments.py) and numbers spelled as written (`1e-3` stays `1e-3`) wherever the
target syntax reads that spelling back as the same value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import yaml

from composer.errors import SpecError
from composer.spec import limits
from composer.spec.document import DELETE, Comment, Document, Path, _Delete
from composer.spec.yaml_front import resolve_plain

_TEXT_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")  # NUMBER in grammar/spec.lark

HEADER_KEYWORDS = {"name": "spec", "description": "description", "paper": "paper", "extends": "extends"}
COMPONENT_KEYS = {"kind", "params", "site", "use", "frozen"}
TOP_ORDER = ("name", "description", "paper", "extends", "inputs", "backbones", "components", "flow", "losses",
             "predict", "train", "stages", "reported")


# ---------------------------------------------------------------- numbers as written
class _Spelled:
    """A number to write as the person spelled it ("1e-3", "5.0e-3"), where the target syntax reads that
    spelling back as exactly the same value; otherwise the value is written plainly."""

    def __init__(self, text: str):
        self.text = text


def _yaml_reads(text: str, value: Any) -> bool:
    try:
        again = resolve_plain(text)
    except SpecError:
        return False
    return type(again) is type(value) and again == value


def _text_reads(text: str, value: Any) -> bool:
    if not _TEXT_NUMBER.fullmatch(text):
        return False
    try:
        again = limits.number(text, None)
    except (SpecError, ValueError):
        return False
    return type(again) is type(value) and again == value


def _spell(v: Any, spellings: dict[Path, str], reads: Callable[[str, Any], bool], path: Path = ()) -> Any:
    """`v` with each number whose spelling `reads` back to it replaced by that spelling."""
    if isinstance(v, dict):
        return {k: _spell(x, spellings, reads, path + (k,)) for k, x in v.items()}
    if isinstance(v, list):
        return [_spell(x, spellings, reads, path + (i,)) for i, x in enumerate(v)]
    text = spellings.get(path)
    if text is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and reads(text, v):
        return _Spelled(text)
    return v


# ---------------------------------------------------------------- comments
def _inside(comments: dict[Path, Comment]) -> set[Path]:
    """Every path that has a commented entry below it."""
    return {p[:i] for p in comments for i in range(len(p))}


def _after(note: Comment | None) -> str:
    return f"  {note.after}" if note is not None and note.after else ""


# ---------------------------------------------------------------- YAML
class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Delete, lambda dumper, _: dumper.represent_scalar("!delete", ""))
def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    """Quote a string that the reader's YAML 1.2 rules would take for something else ("1e-3" is a number
    there, a string to PyYAML's 1.1 rules), so it never comes back as a number."""
    try:
        plain_ok = resolve_plain(text) == text
    except SpecError:
        plain_ok = False
    return dumper.represent_scalar("tag:yaml.org,2002:str", text,
                                   style=None if plain_ok else dumper.default_style or "'")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Spelled, lambda dumper, s: dumper.represent_scalar(
    dumper.resolve(yaml.ScalarNode, s.text, (True, False)), s.text))  # plain, and re-resolved on reading


def _scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list))


def _flow_ok(v: Any) -> bool:
    """Flow style (one line) for empty collections, flat lists, and small mappings of scalars and flat lists."""
    if isinstance(v, list):
        return all(_scalar(x) and x is not DELETE for x in v)
    if isinstance(v, dict):
        flat = all((_scalar(x) or _flow_ok(x)) and not isinstance(x, dict) and x is not DELETE for x in v.values())
        return flat and (len(v) <= 6 or all(_scalar(x) for x in v.values()))
    return True


def _inline(v: Any, flow: bool = True) -> str:
    """One scalar as YAML on one line: inside [...] or {...} when `flow`, else as a block mapping's value
    (where fewer strings need quotes)."""
    holder = [v] if flow else {"k": v}
    for style in (None, '"'):  # double quotes escape line breaks that other styles would write as is
        text = yaml.dump(holder, Dumper=_Dumper, default_flow_style=flow, default_style=style, width=math.inf,
                         allow_unicode=True).strip()
        if "\n" not in text:
            break
    return text[1:-1] if flow else text.split(": ", 1)[1]


def _flow(v: Any, flow: bool = True) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_inline(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _inline(v, flow)


def _yaml_block(v: dict | list, path: Path, indent: int, notes: dict[Path, Comment], inside: set[Path],
                out: list[str]) -> None:
    pad = " " * indent
    for k, x in (v.items() if isinstance(v, dict) else enumerate(v)):
        here = path + (k,)
        note = notes.get(here)
        out.extend(pad + c for c in (note.before if note else []))
        lead = pad + (f"{_inline(k, flow=False)}:" if isinstance(v, dict) else "-")
        if isinstance(x, (dict, list)) and x and (here in inside or not _flow_ok(x)):
            out.append(lead + _after(note))
            at = len(out)
            _yaml_block(x, here, indent + 2, notes, inside, out)
            nested = out[at] if at < len(out) else ""
            if isinstance(v, list) and not _after(note) and not nested.lstrip().startswith("#"):
                out[at - 1: at + 1] = [lead + " " + nested.lstrip()]  # "- key: value" on one line
        elif x is DELETE:
            out.append(lead + " !delete" + _after(note))
        else:
            out.append(f"{lead} {_flow(x, flow=False)}" + _after(note))


def to_yaml(data: dict[str, Any], comments: dict[Path, Comment] | None = None, trailing: list[str] = (),
            spellings: dict[Path, str] | None = None) -> str:
    """The YAML form of a document tree, with the person's comments and number spellings where given."""
    notes = comments or {}
    out: list[str] = []
    _yaml_block(_spell(data, spellings or {}, _yaml_reads), (), 0, notes, _inside(notes), out)
    return "\n".join(out + list(trailing)) + "\n"


# ---------------------------------------------------------------- text
Line = tuple[Path | None, str]  # the entry a line writes (its comments go there), and the line


def _value(v: Any) -> str:
    if v is DELETE:
        raise ValueError("a deletion is not a value")
    if isinstance(v, _Spelled):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SpecError(f"the text syntax has no way to write {v}; keep this spec in YAML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise SpecError(f"cannot write {v!r} in the text syntax")


def _key(k: Any) -> str:
    if not (isinstance(k, str) and k.isidentifier()):
        raise SpecError(f"the key {k!r} cannot be written in the text syntax (names only); keep this spec in YAML")
    return k


def _has_delete(v: Any) -> bool:
    if v is DELETE:
        return True
    if isinstance(v, dict):
        return any(_has_delete(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_delete(x) for x in v)
    return False


def _set_lines(path: tuple[str, ...], v: Any) -> list[Line]:
    """`set`/`delete` lines that rebuild `v` at `path` (used for what statements cannot say)."""
    dotted = ".".join(_key(p) for p in path)
    if v is DELETE:
        return [(path, f"delete {dotted}")]
    if isinstance(v, dict) and (_has_delete(v) or not v):
        if not v:
            return [(path, f"set {dotted} = {{}}")]
        return [line for k, x in v.items() for line in _set_lines(path + (k,), x)]
    return [(path, f"set {dotted} = {_value(v)}")]


def _kwargs(d: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{_key(k)}={_value(v)}" for k, v in d.items()) + ")"


def _component(name: str, c: Any) -> list[Line]:
    if not (isinstance(c, dict) and isinstance(c.get("kind"), str) and set(c) <= COMPONENT_KEYS
            and not _has_delete(c) and ("use" not in c or "site" in c) and isinstance(c.get("params", {}), dict)
            and c.get("frozen", True) is not False
            and (isinstance(c.get("site", ""), str) or (isinstance(c["site"], list) and c["site"]
                                                         and all(isinstance(x, str) for x in c["site"])))
            and (c.get("use") is None or isinstance(c.get("use"), str))):
        return _set_lines(("components", name), c)
    line = f"component {_key(name)}: {_key(c['kind'])}"
    if "params" in c:
        line += _kwargs(c["params"])
    if c.get("site") is not None:
        line += f" at {c['site']}" if isinstance(c["site"], str) else f" at [{', '.join(c['site'])}]"
        if c.get("use") is not None:
            line += f" {c['use']}"
    if c.get("frozen"):
        line += " frozen"
    return [(("components", name), line)]


def _named(keyword: str, section: str, ident: str, name: str, body: Any) -> list[Line]:
    if not (isinstance(body, dict) and isinstance(body.get(ident), str) and not _has_delete(body)):
        return _set_lines((section, name), body)
    rest = {k: v for k, v in body.items() if k != ident}
    return [((section, name), f"{keyword} {_key(name)}: {_key(body[ident])}" + (_kwargs(rest) if rest else ""))]


def _step(out: str, step: Any) -> str | None:
    if (isinstance(step, dict) and set(step) <= {"call", "in"} and isinstance(step.get("call"), str)
            and all(isinstance(a, str) and a.isidentifier() for a in step.get("in", []))):
        return f"  {_key(out)} = {step['call']}({', '.join(step.get('in', []))})"
    return None


def _block(keyword: str, body: dict[str, Any], path: tuple[str, ...]) -> list[Line]:
    plain = {k: v for k, v in body.items() if not _has_delete(v)}
    lines: list[Line] = []
    if plain:
        inner = [(path + (k,), f"  {_key(k)} = {_value(v)}") for k, v in plain.items()]
        lines = [(path, f"{keyword} {{")] + inner + [(None, "}")]
    for k, v in body.items():
        if _has_delete(v):
            lines += _set_lines(path + (k,), v)
    return lines


def to_text(data: dict[str, Any], comments: dict[Path, Comment] | None = None, trailing: list[str] = (),
            spellings: dict[Path, str] | None = None) -> str:
    """The text-syntax form of a document tree, with the person's comments and number spellings where given."""
    data = _spell(data, spellings or {}, _text_reads)
    out: list[Line] = []
    keys = [k for k in TOP_ORDER if k in data] + [k for k in data if k not in TOP_ORDER]
    for key in keys:
        value = data[key]
        if key in HEADER_KEYWORDS and isinstance(value, str):
            out.append(((key,), f"{HEADER_KEYWORDS[key]} {_value(value)}"))
        elif key == "predict" and isinstance(value, str) and value.isidentifier():
            out.append(((key,), f"predict {value}"))
        elif key in ("inputs", "backbones", "components", "flow", "stages") and isinstance(value, dict):
            out.append((None, ""))
            out.extend(_section(key, value))
        elif key in ("losses", "train", "reported") and isinstance(value, dict):
            out.append((None, ""))
            out.extend(_block(key, value, (key,)))
        else:
            out.extend(_set_lines((key,), value))
    return "\n".join(_place(out, comments or {}, list(trailing))).strip() + "\n"


def _place(lines: list[Line], comments: dict[Path, Comment], trailing: list[str]) -> list[str]:
    """Put each comment at the line of its entry. A line writes a whole entry (`component a: ...` holds
    kind, params and site), so the comments of the parts it holds go above it; a comment on an entry that
    has no line of its own (a section key) goes above the first line inside it."""
    where = {}
    for i, (path, _) in enumerate(lines):
        if path is not None:
            where.setdefault(path, i)
    before: dict[int, list[str]] = {}
    after: dict[int, str] = {}
    for path, note in comments.items():
        holder = next((path[:n] for n in range(len(path), 0, -1) if path[:n] in where), None)
        i = where[holder] if holder is not None else next(
            (j for j, (p, _) in enumerate(lines) if p is not None and p[:len(path)] == path), None)
        texts = note.before + ([note.after] if note.after and holder != path else [])
        if i is None:
            trailing = texts + ([note.after] if note.after and holder == path else []) + trailing
            continue
        before.setdefault(i, []).extend(texts)
        if note.after and holder == path:
            after[i] = note.after
    out = []
    for i, (_, line) in enumerate(lines):
        pad = line[: len(line) - len(line.lstrip())]
        out.extend(pad + c for c in before.get(i, []))
        out.append(line + (f"  {after[i]}" if i in after else ""))
    return out + trailing


def _section(key: str, value: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    if key == "inputs":
        for name, body in value.items():
            lines += _named("input", "inputs", "kind", name, body)
    elif key == "backbones":
        for name, body in value.items():
            lines += _named("backbone", "backbones", "family", name, body)
    elif key == "components":
        for name, body in value.items():
            lines += _component(name, body)
    elif key == "stages":
        for name, body in value.items():
            if isinstance(body, dict) and not _has_delete(body):
                lines.append((("stages", name), f"stage {_key(name)} {_value(body)}"))
            else:
                lines += _set_lines(("stages", name), body)
    elif key == "flow":
        steps: list[Line] = []
        other: list[Line] = []
        for out, step in value.items():
            line = _step(out, step)
            if line is None:
                other += _set_lines(("flow", out), step)
            else:
                steps.append((("flow", out), line))
        if steps:
            lines += [(("flow",), "flow {")] + steps + [(None, "}")]
        lines += other
    return lines


def write(doc: Document, to: str) -> str:
    """`doc` in the syntax `to` ("yaml" or "text"), keeping its comments and number spellings."""
    if to == "yaml":
        return to_yaml(doc.data, doc.comments, doc.trailing, doc.spellings)
    if to == "text":
        return to_text(doc.data, doc.comments, doc.trailing, doc.spellings)
    raise ValueError(to)
