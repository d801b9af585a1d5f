"""The YAML front end: a safe reader that keeps positions.

PyYAML's composer builds a node tree (with marks) and never constructs Python objects, so a spec
cannot run code. Scalars are resolved here with YAML 1.2 core rules, not PyYAML's YAML 1.1 ones:
`no`, `off`, `yes`, `on` stay strings and `1e-3` is a float. Duplicate keys are errors, as are
tags other than the standard ones and `!delete` (which removes an inherited key).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from composer.errors import Loc, SpecError
from composer.spec import comments, limits
from composer.spec.document import DELETE, Document, Path, SourceMap

_INT = re.compile(r"[-+]?[0-9]+$|0o[0-7]+$|0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def _loc(node: yaml.Node, file: str) -> Loc:
    start, end = node.start_mark, node.end_mark
    length = end.column - start.column if end.line == start.line else 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"') and end.line == start.line:
        return Loc(file, start.line + 1, start.column + 2, max(1, length - 2))  # the text inside the quotes
    return Loc(file, start.line + 1, start.column + 1, max(1, length))


def resolve_plain(text: str, loc: Loc | None = None) -> Any:
    """YAML 1.2 core-schema resolution of an unquoted scalar; numbers are bounded (limits.number)."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text) or _FLOAT.match(text):
        return limits.number(text, loc)
    if text.lower() in (".inf", "+.inf", "-.inf", ".nan"):
        raise SpecError(f"{text} is not a finite number", loc, expected="a finite number")
    return text


def _explicit_tag(node: yaml.Node) -> str | None:
    """The tag the user wrote, if any (implicit resolution is redone by `resolve_plain`)."""
    if isinstance(node, yaml.ScalarNode) and not node.style and node.tag in _STANDARD_TAGS:
        # PyYAML resolved a plain scalar itself; we cannot tell an explicit !!str from an implicit one
        # here, so treat standard tags on plain scalars as implicit.
        return None
    return node.tag


class _Reader:
    def __init__(self, file: str):
        self.file = file
        self.where = SourceMap()
        self.spellings: dict[Path, str] = {}

    def convert(self, node: yaml.Node, path: Path) -> Any:
        self.where.values[path] = _loc(node, self.file)
        tag = _explicit_tag(node)
        if tag == "!delete":
            return DELETE
        if tag is not None and tag not in _STANDARD_TAGS:
            raise SpecError(f"YAML tag {tag!r} is not allowed in a spec", _loc(node, self.file),
                            expected="plain YAML values (or !delete to remove an inherited key)")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SpecError("mapping keys must be plain names", _loc(key_node, self.file))
                key = key_node.value
                if key in out:
                    first = self.where.keys[path + (key,)]
                    raise SpecError(f"duplicate key '{key}'", _loc(key_node, self.file),
                                    hint=f"'{key}' is already set at line {first.line}; "
                                         "YAML would silently keep only the last one")
                self.where.keys[path + (key,)] = _loc(key_node, self.file)
                out[key] = self.convert(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(v, path + (i,)) for i, v in enumerate(node.value)]
        if node.style or tag == "tag:yaml.org,2002:str":  # quoted or block (libyaml says '' for plain)
            return node.value
        value = resolve_plain(node.value, _loc(node, self.file))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.spellings[path] = node.value
        return value


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_shape(text: str, file: str) -> None:
    """Walk the YAML events (an iterative parse: nothing is built) and refuse, before composing the tree,
    nesting deeper than limits.MAX_DEPTH or more than limits.MAX_NODES values once every alias is expanded."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (values, height) of the node it names
    stack: list[list] = []  # open collections: [anchor, values so far, height of the tallest child]
    total = 0

    def add(values: int, height: int, event: yaml.Event) -> None:
        nonlocal total
        total += values
        where = Loc(file, event.start_mark.line + 1, event.start_mark.column + 1)
        if total > limits.MAX_NODES:
            raise SpecError(f"the document expands to more than {limits.MAX_NODES} values", where,
                            expected="a spec without aliases that multiply (each *alias counts as a copy)")
        if len(stack) + height > limits.MAX_DEPTH:
            raise SpecError(f"nesting deeper than {limits.MAX_DEPTH} levels", where,
                            expected=f"at most {limits.MAX_DEPTH} nested mappings and lists")
        if stack:
            stack[-1][1] += values
            stack[-1][2] = max(stack[-1][2], height)

    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            add(*anchors.get(event.anchor, (1, 1)), event)
        elif isinstance(event, yaml.ScalarEvent):
            add(1, 1, event)
            if event.anchor:
                anchors[event.anchor] = (1, 1)
        elif isinstance(event, yaml.CollectionStartEvent):
            add(1, 1, event)
            stack.append([event.anchor, 1, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, values, height = stack.pop()
            if stack:
                stack[-1][1] += values - 1  # the collection itself was counted when it opened
                stack[-1][2] = max(stack[-1][2], height + 1)
            if anchor:
                anchors[anchor] = (values, height + 1)


def _compose(text: str, file: str) -> yaml.Node | None:
    try:
        _check_shape(text, file)
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else None
        raise SpecError(f"YAML syntax error: {e.problem or e.context}", loc,
                        hint=str(e.context) if e.context and e.problem else None) from None
    except yaml.YAMLError as e:
        raise SpecError(f"YAML error: {e}", Loc(file, 1, 1)) from None


def read_yaml(text: str, file: str, keep_comments: bool = True) -> Document:
    """Parse YAML text into a `Document` (data tree plus source map), within the limits of limits.py."""
    limits.check_size(text, file)
    root = _compose(text, file)
    if root is None:
        raise limits.empty(file)
    reader = _Reader(file)
    data = reader.convert(root, ())
    if not isinstance(data, dict):
        raise SpecError("a spec must be a mapping of sections (backbones, components, flow, ...)",
                        reader.where.value(()))
    if not data:
        raise limits.empty(file)
    if not keep_comments:  # a second pass over the tokens that only `fmt` needs
        return Document(data, reader.where, file, spellings=reader.spellings)
    notes, trailing = comments.attach(comments.yaml_comments(text, yaml.scan(text, Loader=_LOADER)),
                                      comments.anchors(reader.where))
    return Document(data, reader.where, file, comments=notes, trailing=trailing, spellings=reader.spellings)


def read_yaml_value(text: str, file: str, line_text: str | None = None, col: int = 1) -> Any:
    """Parse one YAML value (used for `--set path=value`)."""
    try:
        limits.check_size(text, file)
        _check_shape(text, file)
        root = yaml.compose(text, Loader=_LOADER)
    except (yaml.YAMLError, SpecError) as e:
        reason = e.problems[0].message if isinstance(e, SpecError) else getattr(e, "problem", e)
        raise SpecError(f"cannot read value {text!r}: {reason}",
                        Loc(file, 1, col, max(1, len(text)), line_text)) from None
    if root is None:
        return None
    try:
        return _Reader(file).convert(root, ())
    except SpecError as e:  # located in `text` alone: point at the value inside the whole option
        raise SpecError(f"cannot read value {text!r}: {e.problems[0].message}",
                        Loc(file, 1, col, max(1, len(text)), line_text), expected=e.problems[0].expected) from None
