"""The command line: one click group that loads each command from composer/commands/ only when it runs.

`composer --help` and a light command (`composer fmt`) import neither torch nor the commands they do not run;
each command module holds its own options and orchestration (docs/design-notes.md, "Layout")."""

from __future__ import annotations

import importlib

import click

# name, arguments, the module and function that hold it, and the line `composer --help` shows, in pipeline order
COMMANDS = (
    ("build", "SPEC", "build:build", "check a spec and show what it builds (no weights needed)"),
    ("validate", "SPEC", "validate:validate", "check only"),
    ("diff", "A B", "diff:diff", "what changed between two specs, and what it does to the model"),
    ("graph", "SPEC", "graph:graph", "export the composition graph"),
    ("fmt", "SPEC", "fmt:fmt", "convert between YAML and the text syntax"),
    ("run", "SPEC", "run:run", "train and evaluate on a dataset (--dataset demo works offline)"),
    ("sweep", "SPEC...", "sweep:sweep", "run many variants (--grid, several specs, --seeds) into one results table"),
    ("eval", "SPEC", "evaluate:evaluate_command", "evaluate a checkpoint"),
    ("predict", "SPEC V", "predict:predict", "classify video files (zero-shot with --classes, or with a checkpoint)"),
    ("export", "SPEC", "export:export", "write an inference file (ONNX, TorchScript, torch.export) with frozen "
     "classes"),
    ("plot", "RUN_DIR", "plot:plot", "draw a run's learning curves and confusion matrices (or overlay runs)"),
    ("card", "RUN_DIR", "card:card", "write a run's model card (RUN_DIR/README.md)"),
    ("inspect", "FILE", "inspect:inspect", "what a safetensors file composer wrote says it belongs to"),
    ("data", "check|prepare", "data:data", "data check: find bad videos and split lines before a long run; "
     "data prepare: transcode a dataset once into a copy that decodes fast"),
    ("report", "SPEC...", "report:report", "parameter and FLOP counts against the papers' figures"),
    ("kinds", "", "kinds:kinds", "list the component kinds"),
    ("check-kind", "NAME", "check_kind:check_kind", "run the attachment contract on a kind (a plugin's too)"),
    ("specs", "", "specs:specs_command", "list the shipped specs (SPEC may be one of their names)"),
    ("schema", "", "schema:schema", "write the JSON Schema of a YAML spec, for editors"),
    ("lsp", "", "lsp:lsp", "the language server for editors (stdio)"),
)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (`composer.commands.<module>`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(name for name, *_ in COMMANDS)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        where = next((place for own, _, place, _ in COMMANDS if own == name), None)
        if where is None:
            return super().get_command(ctx, name)
        module, attribute = where.split(":")
        return getattr(importlib.import_module(f"composer.commands.{module}"), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands in pipeline order, each with its arguments, without importing any of them."""
        rows = [(f"{name} {arguments}".strip(), summary) for name, arguments, _, summary in COMMANDS]
        rows += [(name, self.commands[name].get_short_help_str()) for name in sorted(self.commands)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="composer-video", prog_name="composer")
def main() -> None:
    """composer: compose video action-recognition models from frozen backbones and small trainable parts.

    A spec (YAML, or the text syntax in .comp files) says which backbones are used, where each
    trainable part attaches and how tensors flow to the losses. See docs/language.md."""


if __name__ == "__main__":
    main()
