"""`composer lsp` end to end: a real LSP client (pytest-lsp) talks to the server over stdio. Budget: about 25 s,
most of it the server's first check importing the compiler; the random-edit test runs 15 examples in-process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from composer.editor import assist
from composer.editor.check import check
from composer.editor.outline import context

ADAPTER = (ROOT / "specs" / "baselines" / "clip-adapter.yaml").read_text(encoding="utf-8")
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "composer.cli", "lsp"],
                            server_env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


def _at(text: str, needle: str, offset: int = 0) -> types.Position:
    """The position of `needle` (plus `offset` characters) in `text`."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return types.Position(line, index - (text.rfind("\n", 0, index) + 1))


async def _diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


@pytest.mark.asyncio
async def test_an_error_is_reported_where_it_is_and_completion_hover_definition_answer(client: LanguageClient, tmp_path):
    uri = (tmp_path / "adapter.yaml").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=ADAPTER)))
    assert await _diagnostics(client, uri) == []
    broken = ADAPTER.replace("{dim: 64,", "{dimm: 64,")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [types.TextDocumentContentChangeWholeDocument(text=broken)]))
    [found] = await _diagnostics(client, uri)
    assert "bottleneck_adapter has no parameter 'dimm'" in found.message and "did you mean 'dim'?" in found.message
    assert found.range.start == _at(broken, "dimm")  # line 13, column 14 of the file

    for version, junk in enumerate(["a: [", "{{{", "", "backbones: 3", ADAPTER[:200]], start=3):  # never fatal
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=junk)]))
    assert await _diagnostics(client, uri)  # the last text, cut short, is still one located problem or more
    await _completion_hover_and_definition(client, tmp_path)  # the same server: one import of the compiler


async def _completion_hover_and_definition(client: LanguageClient, tmp_path):
    path = tmp_path / "child.yaml"
    text = ADAPTER.replace("kind: bottleneck_adapter", "kind: ").replace("site: clip.visual.blocks[*].mlp", "site: ")
    text = "extends: clip-adapter\n" + text
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=path.as_uri(), language_id="yaml", version=1, text=text)))
    doc = types.TextDocumentIdentifier(uri=path.as_uri())

    async def labels(position):
        answer = await client.text_document_completion_async(types.CompletionParams(doc, position))
        return {i.label for i in answer.items}

    assert {"lora", "bottleneck_adapter", "msta"} <= await labels(_at(text, "kind: ", 6))
    assert "clip.visual.blocks[*].mlp" in await labels(_at(text, "site: ", 6))
    head = await labels(_at(text, "{scale: 100", 1))  # the params of the kind written beside them
    assert "scale" in head and "dim" not in head
    assert {"ViT-B/16", "tiny"} <= await labels(_at(text, "size: ViT", 6))
    assert {"backbones", "components", "flow", "train"} <= await labels(types.Position(text.count("\n"), 0))

    shown = await client.text_document_hover_async(types.HoverParams(doc, _at(text, "cosine_logits", 2)))
    assert "cosine_logits" in shown.contents.value and "| `scale` |" in shown.contents.value

    base = await client.text_document_definition_async(types.DefinitionParams(doc, _at(text, "clip-adapter", 3)))
    assert base.uri.endswith("specs/baselines/clip-adapter.yaml")
    name = await client.text_document_definition_async(types.DefinitionParams(doc, _at(text, "[clip_emb", 2)))
    assert name.range.start == _at(text, "clip_emb: {call")


def test_params_complete_from_the_kind_written_beside_them():
    text = "components:\n  a:\n    kind: lora\n    params:\n      \n"
    labels = {i.label for i in assist.complete(text, context(text, 4, 6))}
    assert labels == {"r", "alpha", "dropout", "weights"}


SPECS = [p for p in (ROOT / "specs").rglob("*") if p.suffix in (".yaml", ".comp")]
ALPHABET = st.sampled_from(list("abkz019 :{}[],#-!*.\n\t'\"") + ["kind: ", "site: ", "extends: ", "!delete"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.sampled_from(SPECS), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8),
                                                             st.lists(ALPHABET, max_size=4)), max_size=4))
def test_random_edits_never_break_the_checker_or_the_assists(spec, edits):
    text = spec.read_text(encoding="utf-8")
    for where, cut, typed in edits:
        at = int(where * len(text))
        text = text[:at] + "".join(typed) + text[at + cut:]
    problems = check(spec.parent / f"edited{spec.suffix}", text)
    assert not any(p.message.startswith("composer could not check") for p in problems), problems
    lines = text.splitlines() or [""]
    line = len(lines) // 2
    for col in (0, len(lines[line]) // 2, len(lines[line])):
        assist.complete(text, context(text, line, col))
        assist.hover(text, line, col)
        assist.definition(text, spec, line, col)


def test_completion_and_hover_answer_without_importing_torch():
    code = ("import sys; from composer.editor import assist, server; from composer.editor.outline import context; "
            "t = 'components:\\n  a: {kind: '; assert assist.complete(t, context(t, 1, 12)); "
            "assert assist.hover('kind: lora', 0, 7); assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
