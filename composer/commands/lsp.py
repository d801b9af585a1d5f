"""`composer lsp`: the language server for editors (composer/editor, docs/editors.md)."""

from __future__ import annotations

import click


@click.command()
def lsp():
    """Run the language server for specs (YAML and .comp) on standard input and output, for an editor:
    composer's own errors as you type, completion, hover, go to definition (docs/editors.md)."""
    from composer.editor.server import serve

    serve()
