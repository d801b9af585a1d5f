"""Writing a spec document back out, as YAML or in the text syntax (`composer fmt`).

Both writers take the document as written (before inheritance is applied), so `extends`, partial
overrides and deletions survive a conversion; text -> YAML -> text gives the same document and IR.
Entries the text statements cannot express whole (a partial override, a deletion) become `set` and
`delete` lines, so nothing is ever dropped.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from composer.errors import SpecError
from composer.spec.document import DELETE, Document, _Delete

HEADER_KEYWORDS = {"name": "spec", "description": "description", "paper": "paper", "extends": "extends"}
COMPONENT_KEYS = {"kind", "params", "site", "use", "frozen"}
TOP_ORDER = ("name", "description", "paper", "extends", "inputs", "backbones", "components", "flow", "losses",
             "predict", "train", "stages", "reported")


# ---------------------------------------------------------------- YAML
class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Delete, lambda dumper, _: dumper.represent_scalar("!delete", ""))


def _scalar_or_flat(v: Any) -> bool:
    return not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v))


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    """Small mappings of scalars and flat lists (flow steps, backbones) stay on one line."""
    flat = all(_scalar_or_flat(v) and v is not DELETE for v in data.values()) and len(data) <= 6
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flat or None)


_Dumper.add_representer(dict, _represent_dict)


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True, width=110)


# ---------------------------------------------------------------- text
def _value(v: Any) -> str:
    if v is DELETE:
        raise ValueError("a deletion is not a value")
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


def _set_lines(path: tuple[str, ...], v: Any) -> list[str]:
    """`set`/`delete` lines that rebuild `v` at `path` (used for what statements cannot say)."""
    dotted = ".".join(_key(p) for p in path)
    if v is DELETE:
        return [f"delete {dotted}"]
    if isinstance(v, dict) and (_has_delete(v) or not v):
        if not v:
            return [f"set {dotted} = {{}}"]
        return [line for k, x in v.items() for line in _set_lines(path + (k,), x)]
    return [f"set {dotted} = {_value(v)}"]


def _kwargs(d: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{_key(k)}={_value(v)}" for k, v in d.items()) + ")"


def _component(name: str, c: Any) -> list[str]:
    if not (isinstance(c, dict) and "kind" in c and set(c) <= COMPONENT_KEYS and not _has_delete(c)
            and ("use" not in c or "site" in c) and isinstance(c.get("params", {}), dict)
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
    return [line]


def _named(keyword: str, section: str, ident: str, name: str, body: Any) -> list[str]:
    if not (isinstance(body, dict) and isinstance(body.get(ident), str) and not _has_delete(body)):
        return _set_lines((section, name), body)
    rest = {k: v for k, v in body.items() if k != ident}
    return [f"{keyword} {_key(name)}: {_key(body[ident])}" + (_kwargs(rest) if rest else "")]


def _step(out: str, step: Any) -> str | None:
    if (isinstance(step, dict) and set(step) <= {"call", "in"} and isinstance(step.get("call"), str)
            and all(isinstance(a, str) and a.isidentifier() for a in step.get("in", []))):
        return f"  {_key(out)} = {step['call']}({', '.join(step.get('in', []))})"
    return None


def _block(keyword: str, body: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    plain = {k: v for k, v in body.items() if not _has_delete(v)}
    lines = []
    if plain:
        inner = [f"  {_key(k)} = {_value(v)}" for k, v in plain.items()]
        lines = [f"{keyword} {{"] + inner + ["}"]
    for k, v in body.items():
        if _has_delete(v):
            lines += _set_lines(path + (k,), v)
    return lines


def to_text(data: dict[str, Any]) -> str:
    """The text-syntax form of a document tree."""
    out: list[str] = []
    keys = [k for k in TOP_ORDER if k in data] + [k for k in data if k not in TOP_ORDER]
    for key in keys:
        value = data[key]
        if key in HEADER_KEYWORDS and isinstance(value, str):
            out.append(f"{HEADER_KEYWORDS[key]} {_value(value)}")
        elif key == "predict" and isinstance(value, str) and value.isidentifier():
            out.append(f"predict {value}")
        elif key in ("inputs", "backbones", "components", "flow", "stages") and isinstance(value, dict):
            out.append("")
            out.extend(_section(key, value))
        elif key in ("losses", "train", "reported") and isinstance(value, dict):
            out.append("")
            out.extend(_block(key, value, (key,)))
        else:
            out.extend(_set_lines((key,), value))
    return "\n".join(out).strip() + "\n"


def _section(key: str, value: dict[str, Any]) -> list[str]:
    lines: list[str] = []
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
                lines.append(f"stage {_key(name)} {_value(body)}")
            else:
                lines += _set_lines(("stages", name), body)
    elif key == "flow":
        steps, other = [], []
        for out, step in value.items():
            line = _step(out, step)
            if line is None:
                other += _set_lines(("flow", out), step)
            else:
                steps.append(line)
        if steps:
            lines += ["flow {"] + steps + ["}"]
        lines += other
    return lines


def write(doc: Document, to: str) -> str:
    if to == "yaml":
        return to_yaml(doc.data)
    if to == "text":
        return to_text(doc.data)
    raise ValueError(to)
