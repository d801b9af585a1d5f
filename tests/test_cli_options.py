"""Every command keeps its options through the redesign of the top floors (issue 21): the option names, types,
choices, bounds, defaults and help of each command are compared with a snapshot taken from the code before it
(tests/data/cli_options.json, written once from the old cli.py, with `schema`, `lsp` and `check-kind` added from main's cli.py
before they moved too; it changes only with a deliberate, listed change).

Budget: about 2 s (imports every command module; builds nothing)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import click

from composer.cli import main

SNAPSHOT = Path(__file__).parent / "data" / "cli_options.json"

# Deliberate changes since the snapshot, applied to it before comparing: (command, option name, key, new value).
PRECISIONS = {"param_type": "Choice", "name": "choice", "choices": ["auto", "bf16", "fp16", "fp32"],
              "case_sensitive": True, "path_type": None}
CHANGES: list[tuple[str, str, str, object]] = [
    # --precision is declared once: build and diff take auto too (the spec's own value could already be auto)
    ("build", "precision", "type", PRECISIONS),
    ("diff", "precision", "type", PRECISIONS),
    # issue 23: LoRA/DoRA as PEFT adapter folders
    ("export", "fmt", "type", {"choices": ["onnx", "torchscript", "exported-program", "peft"], "case_sensitive": True,
                               "param_type": "Choice", "name": "choice", "path_type": None}),
    ("export", "fmt", "help", "onnx (torch.onnx dynamo exporter, model.onnx), torchscript (torch.jit.trace, model.pt), "
     "exported-program (torch.export, model.pt2), or peft: the LoRA/DoRA of each backbone as a PEFT adapter folder "
     "for the library's own model (timm's DINOv2, open_clip's CLIP, transformers' VideoMAE)"),
    # issue 21: one declaration per flag. build's --classes is predict's and export's (names), also read as a count
    ("build", "classes", "type", {"param_type": "String", "name": "text", "path_type": None}),
    ("build", "classes", "callback", True),
    ("build", "classes", "help", "the classes to build the model for: how many, or their names comma-separated "
     "(default: the spec's classes.count)"),
    ("build", "classes", "name", "class_names"),
    # ... and sweep's --seed is run's (one seed for every run), no longer an alias of --seeds
    ("sweep", "seeds", "opts", ["--seeds"]),
]
# Options added deliberately since the snapshot: (command, the option it follows, its record)
ADDED: list[tuple[str, str, dict]] = [
    # issue 21: sweep's --seed is run's --seed (one declaration), not an alias of --seeds
    ("sweep", "seeds", {"name": "seed", "param_type_name": "option", "opts": ["--seed"], "secondary_opts": [],
                        "type": {"min": -(2**63 - 1), "max": 2**63 - 1, "min_open": False, "max_open": False,
                                 "clamp": False, "param_type": "IntRange", "name": "integer range", "path_type": None},
                        "required": False, "nargs": 1, "multiple": False, "default": None,
                        "help": "one seed for every run (the same as --seeds S)", "prompt": None, "is_flag": False,
                        "flag_value": None, "count": False, "hidden": False, "callback": False}),
    # issue 22: `composer diff` compares the specs without torch; building both is opt-in
    ("diff", "as_json", {"name": "model", "param_type_name": "option", "opts": ["--model"], "secondary_opts": [],
                         "type": {"param_type": "Bool", "name": "boolean", "path_type": None}, "required": False,
                         "nargs": 1, "multiple": False, "default": False,
                         "help": "also build both on the meta device and compare the models: attachments, "
                                 "parameters, GFLOPs (imports torch: seconds); implied by --size, --no-flops, "
                                 "--batch-size, --precision and --memory-budget",
                         "prompt": None, "is_flag": True, "flag_value": True, "count": False, "hidden": False,
                         "callback": False}),
    # issue 23: a cluster's signal stops a run cleanly; --requeue asks SLURM to queue the job again
    ("run", "overrides", {"name": "requeue", "param_type_name": "option", "opts": ["--requeue"], "secondary_opts": [],
                          "type": {"param_type": "Bool", "name": "boolean", "path_type": None}, "required": False,
                          "nargs": 1, "multiple": False, "default": False,
                          "help": "when a cluster's signal (SIGUSR1, SIGTERM) stops the run, also ask SLURM to queue "
                                  "the job again (scontrol requeue $SLURM_JOB_ID); without it the run still saves "
                                  "and exits 75 (docs/data.md: a batch script that resumes)",
                          "prompt": None, "is_flag": True, "flag_value": True, "count": False, "hidden": False,
                          "callback": False}),
    # issue 23: a run laid out for upload to a model hub
    ("card", "to_stdout", {"name": "hub", "param_type_name": "option", "opts": ["--hub"], "secondary_opts": [],
                           "type": {"exists": False, "file_okay": True, "dir_okay": True, "writable": False,
                                    "readable": True, "allow_dash": False, "param_type": "Path", "name": "path",
                                    "path_type": None}, "required": False, "nargs": 1, "multiple": False,
                           "default": None,
                           "help": "lay one run out in DIR for upload to a model hub: README.md (the card), "
                                   "model.safetensors (the final weights), spec.yaml, config.json and the card's "
                                   "pictures; nothing is uploaded",
                           "prompt": None, "is_flag": False, "flag_value": None, "count": False, "hidden": False,
                           "callback": False}),
    # issue 23: Optuna searches (composer/sweep/search.py)
    ('sweep', 'dry_run', {'name': 'search', 'param_type_name': 'option', 'opts': ['--search'], 'secondary_opts': [], 'type': {'choices': ['optuna'], 'case_sensitive': True, 'param_type': 'Choice', 'name': 'choice', 'path_type': None}, 'required': False, 'nargs': 1, 'multiple': False, 'default': None, 'help': "let Optuna choose each trial's values (TPE) instead of running a grid: each --grid is then a search space, PATH=log(LOW,HIGH), float(LOW,HIGH), int(LOW,HIGH[,log]) or choice(A,B,...)", 'prompt': None, 'is_flag': False, 'flag_value': None, 'count': False, 'hidden': False, 'callback': False}),
    ('sweep', 'search', {'name': 'trials', 'param_type_name': 'option', 'opts': ['--trials'], 'secondary_opts': [], 'type': {'min': 1, 'max': 1000, 'min_open': False, 'max_open': False, 'clamp': False, 'param_type': 'IntRange', 'name': 'integer range', 'path_type': None}, 'required': False, 'nargs': 1, 'multiple': False, 'default': None, 'help': 'with --search: how many trials the study holds when done, counting every process that shares it', 'prompt': None, 'is_flag': False, 'flag_value': None, 'count': False, 'hidden': False, 'callback': False}),
    ('sweep', 'trials', {'name': 'storage', 'param_type_name': 'option', 'opts': ['--storage'], 'secondary_opts': [], 'type': {'param_type': 'String', 'name': 'text', 'path_type': None}, 'required': False, 'nargs': 1, 'multiple': False, 'default': None, 'help': "with --search: Optuna's storage, e.g. sqlite:///study.db or postgresql://host/db; processes given one storage and --study share the study  [default: sqlite:///<--out>/study.db]", 'prompt': None, 'is_flag': False, 'flag_value': None, 'count': False, 'hidden': False, 'callback': False}),
    ('sweep', 'storage', {'name': 'study', 'param_type_name': 'option', 'opts': ['--study'], 'secondary_opts': [], 'type': {'param_type': 'String', 'name': 'text', 'path_type': None}, 'required': False, 'nargs': 1, 'multiple': False, 'default': None, 'help': "with --search: the study's name in the storage  [default: the sweep directory's name]", 'prompt': None, 'is_flag': False, 'flag_value': None, 'count': False, 'hidden': False, 'callback': False}),
    ('sweep', 'study', {'name': 'prune', 'param_type_name': 'option', 'opts': ['--prune'], 'secondary_opts': [], 'type': {'choices': ['median', 'none'], 'case_sensitive': True, 'param_type': 'Choice', 'name': 'choice', 'path_type': None}, 'required': False, 'nargs': 1, 'multiple': False, 'default': 'none', 'help': "with --search: stop a trial whose objective after an epoch is below the median of earlier trials' at that epoch (Optuna's MedianPruner; the run saves before it stops)", 'prompt': None, 'is_flag': False, 'flag_value': None, 'count': False, 'hidden': False, 'callback': False}),
    ('sweep', 'prune', {'name': 'objective', 'param_type_name': 'option', 'opts': ['--objective'], 'secondary_opts': [], 'type': {'param_type': 'String', 'name': 'text', 'path_type': None}, 'required': False, 'nargs': 1, 'multiple': False, 'default': 'test top-1', 'help': "with --search: the metric Optuna maximises, as results.md names it (e.g. 'test top-1')", 'prompt': None, 'is_flag': False, 'flag_value': None, 'count': False, 'hidden': False, 'callback': False}),
]
# Commands added since the snapshot (the group lists them; their options are held by their own tests)
NEW_COMMANDS = {"inspect": "issue 23: a safetensors file's own metadata (tests/test_file_meta.py)"}
# Commands whose own help text changed deliberately (the others keep theirs word for word).
HELP_CHANGED = {"composer",  # the command list is composer/cli.py's table, no longer a second copy in the text
                "diff",  # issue 22: the model comparison is opt-in (--model)
                "run",  # issue 23: what a cluster's signal does
                "card",  # issue 23: --hub
                "export",  # issue 23: --format peft
                "sweep"}  # issue 23: --search optuna


def _param(param: click.Parameter, ctx: click.Context) -> dict:
    info = param.to_info_dict()
    info.pop("envvar", None)
    path_type = getattr(param.type, "path_type", None)
    info["type"]["path_type"] = getattr(path_type, "__name__", path_type)
    info["callback"] = param.callback is not None and param.name not in ("help", "version")
    if param.name == "workers" and info["default"] == min(4, os.cpu_count() or 1):
        info["default"] = "min(4, cpus)"  # the machine's, at import time
    return info


def options_of(command: click.Command, path: str = "", parent: click.Context | None = None) -> dict[str, dict]:
    """Every command under `command` (its path, e.g. "data check"), with its parameters in declaration order,
    each in a context under its group's, as the command line makes them (the group's settings name the help
    option; click caches that option on the command, so a context without them reads whatever ran first)."""
    command._help_option = None  # click keeps the help option of the first context it saw: make it this one's
    ctx = click.Context(command, info_name=path or "composer", parent=parent, **command.context_settings)
    out = {path or "composer": {"help": command.help, "params": [_param(p, ctx) for p in command.get_params(ctx)]}}
    if isinstance(command, click.Group):
        names = command.list_commands(ctx)
        out[path or "composer"]["commands"] = names
        for name in names:
            out.update(options_of(command.get_command(ctx, name), f"{path} {name}".strip(), ctx))
    return out


def _now() -> dict:
    return json.loads(json.dumps(options_of(main)))  # as the snapshot holds it: tuples become lists


def _expected() -> dict:
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    after = copy.deepcopy(before)
    for command, name, key, value in CHANGES:
        param = next(p for p in after[command]["params"] if p["name"] == name)
        param[key] = value
    for command in after.values():  # the snapshot was read without the group's context: -h was there all along
        for param in command["params"]:
            if param["name"] == "_click_default_help":
                param["opts"] = ["-h", "--help"]
    for command, before_it, record in ADDED:
        params = after[command]["params"]
        params.insert(next(i for i, p in enumerate(params) if p["name"] == before_it) + 1, record)
    after["composer"]["commands"] = sorted([*after["composer"]["commands"], *NEW_COMMANDS])
    return after


def test_every_command_has_the_options_it_had():
    now, expected = _now(), _expected()
    assert sorted(now) == sorted([*expected, *NEW_COMMANDS])
    for command in expected:
        assert now[command].get("commands") == expected[command].get("commands"), command
        if command not in HELP_CHANGED:
            assert now[command]["help"] == expected[command]["help"], command
        have = {p["name"]: p for p in now[command]["params"]}
        want = {p["name"]: p for p in expected[command]["params"]}
        assert sorted(have) == sorted(want), command
        for name in want:
            assert have[name] == want[name], f"{command} {name}"


# commands whose --help now lists options in their groups (compute after training; the same options)
REGROUPED = {"run", "sweep", "predict"}


def test_the_help_lists_the_options_in_the_same_order():
    now, expected = _now(), _expected()
    for command in set(expected) - REGROUPED:
        assert [p["name"] for p in now[command]["params"]] == [p["name"] for p in expected[command]["params"]], command


# options whose type is narrower in one command, on purpose: (flag, command) -> why
NARROWER = {
    ("--checkpoint", "eval"): "eval's checkpoint must exist (it is verified first)",
    ("--out", "sweep"): "the sweep directory is handed on as a Path",
}


def test_every_command_taking_a_group_accepts_the_same_values():
    """An option of a group (commands/groups.py) has one type, choices, bounds and kind (flag, repeatable)
    in every command that takes it; a command's own help may say what it means there."""
    from composer.commands import groups

    declared = [o for g in vars(groups).values() if isinstance(g, groups.Group) for o in g.options]
    now = _now()
    checked = 0
    for option in declared:
        seen = {}
        for command, info in now.items():
            for p in info["params"]:
                if p["name"] == option.param and option.flags[0] in p["opts"] and (option.flags[0], command) \
                        not in NARROWER:
                    seen[command] = {k: p[k] for k in ("type", "multiple", "is_flag", "nargs", "count")}
        assert seen, f"{option.flags[0]} is declared but no command takes it"
        first = next(iter(seen.values()))
        assert all(v == first for v in seen.values()), f"{option.flags[0]}: {seen}"
        checked += len(seen)
    assert checked > 60  # the groups are shared: run, sweep, eval, predict, export, build, diff, data
