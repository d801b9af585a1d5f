"""`composer inspect FILE...`: what a safetensors file composer wrote says about itself."""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer.commands.common import NonEmptyPath, fail_on_spec_errors
from composer.commands.groups import JSON
from composer.errors import DataError, cut

# header keys that are JSON texts, shown decoded; the structure is long and `composer build` shows it better
JSON_KEYS = ("composer",)
HIDDEN = ("structure",)
MOST = 2000  # characters of one value shown as text (a header may hold up to 100 MB)


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="FILE...", type=NonEmptyPath(exists=True, path_type=Path))
@JSON.but(help="print one JSON object per file")
@fail_on_spec_errors
def inspect(paths, as_json):
    """Show the metadata a safetensors file composer wrote carries: composer version, spec name and digest, the
    model's fingerprint, and where training was (stage, epoch, step); then its tensors' count and size.
    A folder (a checkpoint, a run's checkpoints/, a feature cache) shows every .safetensors file in it.

    \b
    composer inspect runs/msta-20261207-144743/checkpoints/best.safetensors
    composer inspect runs/msta-20261207-144743/checkpoints"""
    files = [f for p in paths for f in (sorted(p.rglob("*.safetensors")) if p.is_dir() else [p])]
    if not files:
        raise DataError(f"no .safetensors file in {', '.join(map(str, paths))}")
    for path in files:
        about = describe(path)
        if as_json:
            click.echo(_dumps(about))
            continue
        click.echo(f"{path}:")
        for key, value in about["metadata"].items():
            shown = _dumps(value) if isinstance(value, (dict, list)) else str(value)
            click.echo(f"  {cut(key, 80)}: {cut(shown, MOST)}")
        click.echo(f"  tensors: {about['tensors']} ({about['bytes']:,} bytes)")


def _dumps(value) -> str:
    """JSON text; for a value nested too deeply to write back (a crafted header), a note saying so."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except RecursionError:
        return '"(nested too deeply to show)"'


def describe(path: Path) -> dict:
    """The file's metadata (JSON texts decoded, the structure left out) and its tensors' count and bytes."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata, names = f.metadata() or {}, list(f.keys())
        with open(path, "rb") as raw:  # 8 bytes of header length, the header, then every tensor's bytes, no gap
            total = path.stat().st_size - 8 - int.from_bytes(raw.read(8), "little")
    except (SafetensorError, OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable safetensors file ({str(e)[:120]})") from None
    shown = {}
    for key, value in metadata.items():
        if key in HIDDEN:
            continue
        try:
            shown[key] = json.loads(value) if key in JSON_KEYS else value
        except (ValueError, RecursionError):
            shown[key] = cut(value, MOST)
    if "composer_version" not in shown:
        shown["note"] = "no composer metadata: written by another tool, or by a composer before it wrote it"
    return {"file": str(path), "metadata": shown, "tensors": len(names), "bytes": total}
