"""`composer lsp`: a language server for YAML specs and `.comp` files, over stdio (pygls).

Diagnostics are the compiler's own located problems (check.py), computed after the document has been still
for DEBOUNCE_S, one check at a time in a worker thread so the server keeps answering. Completion, hover and
go-to-definition read the shipped schema (assist.py) and answer without the compiler. No request may end
the server: a failure of one answer is logged and answered with nothing.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from composer.editor import assist
from composer.editor.check import check
from composer.editor.outline import context
from composer.errors import Problem

DEBOUNCE_S = 0.3  # a check starts once typing pauses this long
YAML_SUFFIXES = (".yaml", ".yml")

log = logging.getLogger(__name__)


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("composer", "0.1.0")
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.checker = ThreadPoolExecutor(max_workers=1)  # the compiler's caches are not for two threads

    def schedule(self, uri: str, delay: float = DEBOUNCE_S) -> None:
        if uri in self.pending:
            self.pending[uri].cancel()
        loop = asyncio.get_running_loop()
        self.pending[uri] = loop.call_later(delay, lambda: loop.create_task(self.publish(uri)))

    async def publish(self, uri: str) -> None:
        self.pending.pop(uri, None)
        document = self.workspace.get_text_document(uri)
        version, text = document.version, document.source
        problems = await asyncio.get_running_loop().run_in_executor(self.checker, check, _path(uri), text)
        if self.workspace.get_text_document(uri).version != version:
            return  # edited meanwhile: the newer check publishes
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[_diagnostic(p) for p in problems]))


def _path(uri: str) -> Path:
    return Path(to_fs_path(uri) or uri)


def _diagnostic(problem: Problem) -> types.Diagnostic:
    loc = problem.loc
    line, col, length = (loc.line - 1, loc.col - 1, loc.length) if loc else (0, 0, 1)
    extra = [f"expected: {problem.expected}"] * bool(problem.expected) + [f"hint: {problem.hint}"] * bool(problem.hint)
    return types.Diagnostic(
        range=types.Range(types.Position(max(line, 0), max(col, 0)), types.Position(max(line, 0), max(col, 0) + length)),
        message="\n".join([problem.message, *extra]), severity=types.DiagnosticSeverity.Error, source="composer")


server = SpecServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SpecServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, delay=0)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SpecServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: SpecServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.schedule(params.text_document.uri, delay=0)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SpecServer, params: types.DidCloseTextDocumentParams) -> None:
    handle = ls.pending.pop(params.text_document.uri, None)
    if handle is not None:
        handle.cancel()
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


def _yaml(ls: SpecServer, uri: str) -> str | None:
    """The text of a YAML spec (completion and hover read YAML; a .comp file gets diagnostics only)."""
    return ls.workspace.get_text_document(uri).source if _path(uri).suffix in YAML_SUFFIXES else None


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[":", " ", "."]))
def completion(ls: SpecServer, params: types.CompletionParams) -> types.CompletionList:
    text = _yaml(ls, params.text_document.uri)
    items: list[assist.Item] = []
    try:
        if text is not None:
            items = assist.complete(text, context(text, params.position.line, params.position.character))
    except Exception:  # noqa: BLE001  (an unforeseen text: no completion, the server stays up)
        log.exception("completion failed")
    return types.CompletionList(is_incomplete=False, items=[types.CompletionItem(
        label=i.label, detail=i.detail or None,
        kind=types.CompletionItemKind.Property if i.is_key else types.CompletionItemKind.Value,
        insert_text=f"{i.label}: " if i.is_key else None,
        documentation=types.MarkupContent(types.MarkupKind.Markdown, i.documentation) if i.documentation else None)
        for i in items])


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: SpecServer, params: types.HoverParams) -> types.Hover | None:
    text = ls.workspace.get_text_document(params.text_document.uri).source
    try:
        shown = assist.hover(text, params.position.line, params.position.character)
    except Exception:  # noqa: BLE001
        log.exception("hover failed")
        return None
    return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, shown)) if shown else None


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: SpecServer, params: types.DefinitionParams) -> types.Location | None:
    text = _yaml(ls, params.text_document.uri)
    try:
        found = assist.definition(text, _path(params.text_document.uri), params.position.line,
                                  params.position.character) if text is not None else None
    except Exception:  # noqa: BLE001
        log.exception("definition failed")
        return None
    if found is None:
        return None
    path, line, col = found
    at = types.Position(line, col)
    return types.Location(uri=path.resolve().as_uri(), range=types.Range(at, at))


def serve() -> None:
    """Run the server on standard input and output until the client closes it."""
    server.start_io()
