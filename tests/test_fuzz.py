"""Fuzzing both front ends: whatever the input, the only error that may escape is a SpecError."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.errors import SpecError
from composer.graph.declared import check_spec
from composer.spec.load import defaults, validate
from composer.spec.merge import merge
from composer.spec.text_front import read_text
from composer.spec.yaml_front import read_yaml

VALID_TEXT = open("specs/baselines/clip-adapter.yaml").read()
VALID_COMP = open("specs/baselines/dinov2-dora-linear.comp").read()


def _pipeline(reader, text: str, file: str) -> None:
    try:
        doc = reader(text, file)
        spec = validate(merge(defaults(), doc))
        check_spec(spec)  # every check before a build, against the declarations
    except SpecError:
        pass


def _mutations(source: str):
    tokens = st.sampled_from(list("{}[]()=:,.\"'#-*\n ") + ["blocks[", "clip", "at", "flow", "1e-3", "no", "~",
                                                             "!delete", "kind:", "site:", "[8:12]", "0", "-1"])
    return st.tuples(st.integers(0, len(source)), st.integers(0, 12), st.lists(tokens, max_size=4)).map(
        lambda t: source[: t[0]] + "".join(t[2]) + source[t[0] + t[1]:])


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=200))
def test_yaml_front_end_random_text(text):
    _pipeline(read_yaml, text, "fuzz.yaml")


@SETTINGS
@given(_mutations(VALID_TEXT))
def test_yaml_front_end_mutated_spec(text):
    _pipeline(read_yaml, text, "fuzz.yaml")


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=200))
def test_text_front_end_random_text(text):
    _pipeline(read_text, text, "fuzz.comp")


@SETTINGS
@given(_mutations(VALID_COMP))
def test_text_front_end_mutated_spec(text):
    _pipeline(read_text, text, "fuzz.comp")


# ---------------------------------------------------------------- hostile shapes: deep, wide, aliased, extreme
_EXTREME = st.sampled_from(["1" + "0" * 60, "1e999", "-1e999", ".inf", "-.inf", ".nan", "0x" + "f" * 30,
                            "99999999999999999999", "1e-400", "-0", "4e+21"])


def _deep(depth: int, opener: str, closer: str) -> str:
    return opener * depth + closer * depth


@settings(max_examples=40, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(1, 3000), st.sampled_from([("[", "]"), ("{a: ", "}")]), st.booleans())
def test_yaml_deep_documents_never_recurse(depth, brackets, text):
    opener, closer = brackets
    if text:
        _pipeline(read_text, "train { x = " + _deep(depth, "[", "]") + " }\n", "fuzz.comp")
    else:
        _pipeline(read_yaml, "x: " + _deep(depth, opener, closer) + "\n", "fuzz.yaml")


@settings(max_examples=30, deadline=3000, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(2, 12), st.integers(1, 9))
def test_yaml_aliases_that_multiply_are_bounded(width, levels):
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    _pipeline(read_yaml, "\n".join(lines) + "\n", "fuzz.yaml")


@settings(max_examples=60, deadline=2000, suppress_health_check=list(HealthCheck), derandomize=True)
@given(_EXTREME, st.sampled_from(["train.lr", "train.epochs", "train.batch_size", "losses.ce", "train.seed"]))
def test_numerically_extreme_values(number, path):
    section, key = path.split(".")
    _pipeline(read_yaml, f"{VALID_TEXT}\n{section}_probe: 1\n".replace(f"{section}_probe: 1", f"{section}:\n  {key}: {number}")
              if f"\n{section}:" not in VALID_TEXT else f"{section}:\n  {key}: {number}\n", "fuzz.yaml")
    _pipeline(read_text, f"{section} {{ {key} = {number} }}\n", "fuzz.comp")


@settings(max_examples=10, deadline=5000, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.integers(100, 30_000))
def test_wide_documents(width):
    _pipeline(read_yaml, "train:\n" + "".join(f"  k{i}: {i}\n" for i in range(width)), "fuzz.yaml")


# -- every front-end entry point of the command line, on hostile documents (budget: ~40 CliRunner calls, each
#    refused by the front end before anything is built; a few seconds in all on an idle machine)
def _hostile(kind: str, n: int) -> tuple[str, str, list[str]]:
    """(file name, text, extra options) of a document that is deep, wide, aliased or extreme in one way."""
    base = "extends: clip-adapter\nname: hostile\n"
    if kind == "deep mapping":
        return "h.yaml", base + "train: " + "{a: " * n + "1" + "}" * n + "\n", []
    if kind == "deep list":
        return "h.yaml", base + "train: {betas: " + "[" * n + "]" * n + "}\n", []
    if kind == "deep brackets":
        return "h.comp", 'extends "clip-adapter"\nset train.betas = ' + "[" * n + "]" * n + "\n", []
    if kind == "deep set path":
        return "h.comp", 'extends "clip-adapter"\nset components.adapter.params.' + ".".join(["a"] * n) + " = 1\n", []
    if kind == "deep delete path":
        return "h.comp", 'extends "clip-adapter"\ndelete train.' + ".".join(["a"] * n) + "\n", []
    if kind == "deep --set path":
        return "h.yaml", base, ["--set", "components.adapter.params." + ".".join(["a"] * n) + "=1"]
    if kind == "deep --set value":
        return "h.yaml", base, ["--set", "train.betas=" + "[" * n + "]" * n]
    if kind == "deep --unset path":
        return "h.yaml", base, ["--unset", "train." + ".".join(["a"] * n)]
    if kind == "billion laughs":
        levels = ["l0: &l0 [" + ", ".join(["x"] * 9) + "]"]
        levels += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, max(2, n % 12))]
        return "h.yaml", base + "reported:\n" + "".join(f"  {line}\n" for line in levels), []
    if kind == "aliased deep":
        return "h.yaml", base + "train: &t {a: " + "{b: " * min(n, 60) + "1" + "}" * min(n, 60) + "}\nlosses: *t\n", []
    if kind == "wide mapping":
        return "h.yaml", base + "components:\n  adapter:\n    params:\n" + "".join(
            f"      k{i}: {i}\n" for i in range(n * 20)), []
    if kind == "wide list":
        return "h.yaml", base + "train: {betas: [" + ", ".join(["0.5"] * (n * 20)) + "]}\n", []
    if kind == "extreme numbers":
        return "h.yaml", base + f"train: {{lr: 1e{n}, epochs: {'9' * (n % 60 + 1)}, seed: -0x{'f' * (n % 40 + 1)}}}\n", []
    return "h.yaml", base + "x" * (n * 10) + ": 1\n", []  # a long key


HOSTILE = ["deep mapping", "deep list", "deep brackets", "deep set path", "deep delete path", "deep --set path",
           "deep --set value", "deep --unset path", "billion laughs", "aliased deep", "wide mapping", "wide list",
           "extreme numbers", "long key"]
ENTRY_POINTS = {"validate": lambda f, o: ["validate", f, *o], "fmt": lambda f, o: ["fmt", f, "--to", "text"],
                "diff": lambda f, o: ["diff", "clip-adapter", f, "--size", "tiny", "--no-flops", *o],
                "build": lambda f, o: ["build", f, "--size", "tiny", "--no-flops", *o]}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.sampled_from(HOSTILE), st.sampled_from(sorted(ENTRY_POINTS)), st.integers(1, 5000))
def test_hostile_documents_through_every_entry_point(tmp_path_factory, kind, entry, n):
    """Exit 0 or 2 with a located error, never a traceback, in bounded time (a dotted `set`/`--set` path made
    one mapping per name without any bracket: 3000 names reached a RecursionError in the merge)."""
    import time

    from click.testing import CliRunner

    from composer.cli import main

    name, text, options = _hostile(kind, n)
    path = tmp_path_factory.mktemp("hostile") / name
    path.write_text(text)
    start = time.perf_counter()
    result = CliRunner().invoke(main, ENTRY_POINTS[entry](str(path), options))
    seconds = time.perf_counter() - start
    assert result.exit_code in (0, 2), (kind, entry, n, result.output[-2000:])
    assert "Traceback" not in result.output and not isinstance(result.exception, RecursionError), (kind, entry, n)
    if result.exit_code == 2:
        assert "error: " in result.output, result.output[-500:]
    assert seconds < 30, (kind, entry, n, seconds)  # 6 s at most measured (50 000 keys); a busy machine is slower
