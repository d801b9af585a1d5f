"""The command line loads a command only when it runs: `composer --help` and `composer fmt` import neither
torch nor the modules of the commands they do not run (start-up time; composer/cli.py's lazy group).

Budget: about 3 s (two fresh interpreters, no torch)."""

import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys
from composer.cli import main
try:
    main({args!r})
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.startswith("composer.commands."))
print("torch" in sys.modules, ",".join(loaded), file=sys.stderr)
"""


def imported(*args: str) -> tuple[bool, set[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    torch, _, modules = out.stderr.strip().splitlines()[-1].partition(" ")
    return torch == "True", set(filter(None, modules.split(",")))


def test_help_imports_no_torch_and_no_command():
    torch, modules = imported("--help")
    assert not torch
    assert modules <= {"composer.commands.common", "composer.commands.groups", "composer.commands.options"}, modules


def test_fmt_imports_only_its_own_command_and_no_torch():
    torch, modules = imported("fmt", "specs/baselines/clip-adapter.yaml", "--to", "text")
    assert not torch
    assert "composer.commands.fmt" in modules
    assert not modules - {"composer.commands.fmt", "composer.commands.common", "composer.commands.groups",
                          "composer.commands.options"}, modules
