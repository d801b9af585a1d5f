"""The command line: thin click commands over the pipeline spec -> graph -> plan -> build -> run.

Every mistake in a spec (or in a command's arguments about it) ends with a located message and exit
status 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
from rich.console import Console

from composer.errors import DataError, SpecError

SPEC_HELP = "a spec file: .yaml/.yml, or .comp for the text syntax"


def _fail_on_spec_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            click.echo(str(e), err=True)
            sys.exit(2)
        except DataError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper


def spec_options(fn):
    fn = click.option("--unset", "unsets", multiple=True, metavar="PATH",
                      help="remove a key, e.g. --unset components.adapter")(fn)
    fn = click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
                      help="override a field, e.g. --set components.adapter.params.dim=128 (repeatable)")(fn)
    return fn


def _load(spec_path: str, sets, unsets):
    from composer.spec.load import load_spec

    return load_spec(spec_path, sets, unsets)


def _compile(spec, tiny: bool = False, plan: bool = True, classes: int | None = None):
    from composer.build.compile import BuildOptions, compile_spec

    return compile_spec(spec, BuildOptions(device="meta", tiny=tiny, plan=plan, num_classes=classes))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="composer-video", prog_name="composer")
def main() -> None:
    """composer: compose video action-recognition models from frozen backbones and small trainable parts.

    A spec (YAML, or the text syntax in .comp files) says which backbones are used, where each
    trainable part attaches and how tensors flow to the losses. See docs/language.md.

    \b
    composer build SPEC      check a spec and show what it builds (no weights needed)
    composer validate SPEC   check only
    composer graph SPEC      export the composition graph
    composer fmt SPEC        convert between YAML and the text syntax
    composer report SPEC...  parameter and FLOP counts against the papers' figures
    composer kinds           list the component kinds
    """


@main.command()
@click.argument("spec", metavar="SPEC")
@spec_options
@click.option("--size", type=click.Choice(["full", "tiny"]), default="full", show_default=True,
              help="tiny swaps every backbone for its small random-weight variant")
@click.option("--classes", type=int, default=None, help="number of classes (default: the spec's classes.count)")
@click.option("--no-plan", is_flag=True, help="build without the plan (autograd everywhere, no caching)")
@click.option("--no-flops", is_flag=True, help="skip counting FLOPs")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of tables")
@_fail_on_spec_errors
def build(spec, sets, unsets, size, classes, no_plan, no_flops, as_json):
    """Check SPEC and show what it builds: every node, where each attachment landed (per layer),
    parameters per part (total and trainable), GFLOPs per clip and the plan.

    Runs on the meta device: no weights are loaded, so full-size models build in seconds, offline."""
    from composer.build.summary import render, report

    model = _compile(_load(spec, sets, unsets), tiny=size == "tiny", plan=not no_plan, classes=classes)
    info = report(model, flops=not no_flops)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        render(info, Console())


@main.command()
@click.argument("spec", metavar="SPEC")
@spec_options
@_fail_on_spec_errors
def validate(spec, sets, unsets):
    """Check SPEC (syntax, schema, sites, shapes, graph) without showing the build."""
    model = _compile(_load(spec, sets, unsets))
    click.echo(f"{spec}: ok ({len(model.graph.attachments)} attachments, {len(model.graph.calls)} flow components)")


@main.command()
@click.argument("spec", metavar="SPEC")
@spec_options
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid", "json", "svg", "png"]), default="mermaid",
              show_default=True, help="svg and png need Graphviz's dot program")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write to a file instead of stdout")
@_fail_on_spec_errors
def graph(spec, sets, unsets, fmt, output):
    """Export the composition graph of SPEC: backbones as clusters with their attachments, frozen
    parts grey and trainable parts green, tensor shapes on the edges."""
    from composer.viz import export

    model = _compile(_load(spec, sets, unsets))
    if fmt in ("svg", "png"):
        data = export.render(export.to_dot(model), fmt)
        if output is None:
            raise SpecError(f"--format {fmt} writes binary data: give -o FILE")
        Path(output).write_bytes(data)
        return
    text = {"dot": export.to_dot, "mermaid": export.to_mermaid, "json": export.to_json}[fmt](model)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("spec", metavar="SPEC")
@click.option("--to", "to", type=click.Choice(["yaml", "text"]), required=True, help="the syntax to write")
@click.option("--resolved", is_flag=True, help="write the spec with everything it extends merged in")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write to a file instead of stdout")
@_fail_on_spec_errors
def fmt(spec, to, resolved, output):
    """Convert SPEC between YAML and the text syntax, losslessly (extends, overrides and deletions
    are kept as written unless --resolved)."""
    from composer.spec.document import Document
    from composer.spec.load import read_document, resolve_document, validate
    from composer.spec.printer import write

    doc = resolve_document(spec) if resolved else read_document(spec)
    if resolved:
        data = validate(doc).model_dump(mode="json", by_alias=True, exclude_defaults=True)
        doc = Document(data, doc.where, doc.file)
    text = write(doc, to)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="docs/reproduction.md", show_default=True,
              help="the Markdown file whose table (between its report markers) is rewritten")
@_fail_on_spec_errors
def report(specs, output):
    """Count trainable and total parameters and GFLOPs per clip of each SPEC at full size (meta device),
    compare with the figures its paper reports (the spec's `reported`), and write the table to OUTPUT."""
    from rich.progress import track

    from composer.build import report as rep

    rows = [rep.measure(path) for path in track(specs, description="measuring", transient=True)]
    click.echo(rep.write(rows, output), nl=False)
    click.echo(f"written to {output}", err=True)


@main.command()
@click.option("--markdown", is_flag=True, help="write the component catalogue (docs/components.md)")
def kinds(markdown):
    """List the component kinds of the registry, with their parameters."""
    from composer.components.catalogue import catalogue_markdown, kinds_table

    if markdown:
        click.echo(catalogue_markdown(), nl=False)
    else:
        Console().print(kinds_table())


if __name__ == "__main__":
    main()
