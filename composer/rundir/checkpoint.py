"""Trainable-only checkpoints: safetensors plus a fingerprint of the model they belong to.

Only what trains is saved (adapters, prompts, heads, unfrozen backbone weights), so a checkpoint of an
adapter spec is megabytes, not the backbone's gigabytes. The fingerprint hashes the backbones
(family, size, weights) and the names and shapes of the trainable tensors; loading onto a model with a
different fingerprint is refused with the list of differences. Each file verifies itself: its header
holds the SHA-256 of its tensors, checked on load, and a tensor holding NaN or infinity is refused by
name. Files are written atomically (temporary file, fsync, rename), so an interrupted save never
destroys the previous checkpoint, and nothing is ever unpickled. `--checkpoint` may also name a
checkpoint directory of a run (composer/rundir/checkpoint_dir.py) or its checkpoints folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from composer.compiler.fingerprint import fingerprint, identity, structure
from composer.errors import DataError, SpecError
from composer.files import atomic_write_bytes
from composer.rundir.checkpoint_dir import (
    MANIFEST,
    WEIGHTS,
    in_run_folder,
    latest_checkpoint,
    refuse_with_offer,
    verify_checkpoint,
)

DIGEST_KEY = "tensors_sha256"


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes (in name order): what a file must still
    hold when it is loaded."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors holding a NaN or an infinity."""
    return [n for n, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def trainable_bytes(model, meta: dict[str, Any] | None = None, tensors: dict[str, torch.Tensor] | None = None,
                    ident: dict[str, str] | None = None) -> bytes:
    """A trainable-only safetensors file in memory: the tensors, the model's identity (fingerprint, spec,
    composer version; `ident` when the caller has it) and structure, `meta`, and the SHA-256 of the tensors
    (so the file verifies itself)."""
    tensors = {n: p.detach().to("cpu").contiguous()
               for n, p in (model.trainable_state() if tensors is None else tensors).items()}
    header = {**(ident or identity(model, tensors)), "structure": json.dumps(structure(model, tensors)),
              "composer": json.dumps(meta or {}), DIGEST_KEY: tensor_digest(tensors)}
    return save(tensors, metadata=header)


def save_trainable(model, path: str | Path, meta: dict[str, Any] | None = None,
                   tensors: dict[str, torch.Tensor] | None = None) -> None:
    """`tensors`: the trainable tensors when the model does not hold them whole (FSDP shards)."""
    atomic_write_bytes(Path(path), trainable_bytes(model, meta, tensors))


def _differences(saved: Any, current: dict[str, Any]) -> list[str]:
    """What differs between a checkpoint's recorded structure and the model's (nothing when the recorded
    one is not a structure this composer writes: the tensors are compared one by one after this)."""
    if not (isinstance(saved, dict) and isinstance(saved.get("backbones"), dict)
            and isinstance(saved.get("trainable"), dict)):
        return []
    lines = []
    for name in sorted(set(saved["backbones"]) | set(current["backbones"])):
        a, b = saved["backbones"].get(name), current["backbones"].get(name)
        if a != b:
            lines.append(f"backbone {name}: checkpoint has {a}, model has {b}")
    s, c = saved["trainable"], current["trainable"]
    missing = sorted(set(c) - set(s))
    extra = sorted(set(s) - set(c))
    shapes = sorted(n for n in set(s) & set(c) if s[n] != c[n])
    for title, names in (("missing in the checkpoint", missing), ("not in the model", extra)):
        if names:
            lines.append(f"{len(names)} trainable tensor(s) {title}: {', '.join(names[:5])}"
                         + (" ..." if len(names) > 5 else ""))
    for n in shapes[:5]:
        lines.append(f"{n}: checkpoint {s[n]}, model {c[n]}")
    return lines


def mismatches(tensors: dict[str, torch.Tensor], params: dict[str, torch.Tensor]) -> list[str]:
    """Every way the tensors of a checkpoint differ from the parameters they are to be copied into, one
    phrase per tensor: missing, extra, another shape or another dtype (nothing is ever converted)."""
    problems = [f"lacks {n} (the model trains it)" for n in sorted(set(params) - set(tensors))]
    problems += [f"holds {n}, which the model does not train" for n in sorted(set(tensors) - set(params))]
    for n in sorted(set(tensors) & set(params)):
        t, p = tensors[n], params[n]
        if list(t.shape) != list(p.shape):
            problems.append(f"holds {n} with shape {list(t.shape)}, the model's is {list(p.shape)}")
        elif t.dtype != p.dtype:
            problems.append(f"holds {n} as {str(t.dtype).removeprefix('torch.')}, the model's is "
                            f"{str(p.dtype).removeprefix('torch.')} (a checkpoint is never converted)")
    return problems


def copy_into(model, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Copy a checkpoint's tensors into the model's trainable parameters, after checking that they are
    exactly the model's set: the same names, shapes and dtypes (DataError naming the first that is not)."""
    params = model.trainable_state()
    problems = mismatches(tensors, params)
    if problems:
        more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
        raise DataError(f"{path} does not fit the model: it {problems[0]}{more}; refusing to load it")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].device))


def _structure_of(header: dict[str, str]) -> Any:
    try:
        return json.loads(header.get("structure", "null"))
    except (ValueError, RecursionError):
        return None


def weights_file(path: str | Path) -> Path:
    """The trainable-only file a --checkpoint names: the file itself, a checkpoint directory's weights
    (after verifying its manifest), or the latest checkpoint of a checkpoints folder."""
    path = Path(path)
    if path.is_file():
        return path
    path = _checkpoint_dir(path)
    try:
        manifest = verify_checkpoint(path)
        if manifest["fingerprint"] != _header(path / WEIGHTS).get("fingerprint"):
            raise DataError(f"{path / WEIGHTS} does not belong to the manifest next to it (the fingerprints differ)")
    except DataError as e:
        raise _offered(path, e) from None
    return path / WEIGHTS


def _offered(checkpoint: Path, error: DataError) -> DataError:
    """A refusal of a run's checkpoint directory, with the previous one that verifies offered, as a resume
    offers it (never used silently)."""
    if not in_run_folder(checkpoint):
        return error
    return refuse_with_offer(checkpoint.parent, checkpoint, error, "to use it, give --checkpoint {}")


def _checkpoint_dir(path: Path) -> Path:
    """`path` when it is a checkpoint directory; the latest checkpoint when it is a checkpoints folder."""
    if not path.exists():
        raise DataError(f"checkpoint not found: {path}")
    if (path / MANIFEST).exists():
        return path
    found = latest_checkpoint(path)
    if found is None:
        raise DataError(f"{path} is not a checkpoint: neither a .safetensors file, a checkpoint directory "
                        f"(with {MANIFEST}) nor a run's checkpoints folder")
    return found


def _header(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as e:  # a truncated or foreign file
        raise DataError(f"{path} is not a readable composer checkpoint ({type(e).__name__}: {e})") from None


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata a run stored with a checkpoint (stage, epoch, classes, seed, size); not verified."""
    path = Path(path)
    if path.is_dir():
        path = _checkpoint_dir(path) / WEIGHTS
    return _meta(_header(path), path)


# what a run stores in a checkpoint's metadata, and the type each must have where it is present
META_TYPES: dict[str, tuple[type, ...]] = {
    "classes": (list,), "seed": (int,), "size": (str,), "weights": (str,), "demo_manifest": (str,),
    "stage": (str,), "epoch": (int,), "step": (int,), "batch": (int,), "top1": (int, float)}


def _meta(header: dict[str, str], path: Path) -> dict[str, Any]:
    """The `composer` metadata of a header, checked to be what a run writes (DataError naming the field)."""
    try:
        meta = json.loads(header.get("composer", "{}"))
    except (ValueError, RecursionError):
        raise DataError(f"{path}: its metadata is not JSON; the file is not one composer wrote") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: its metadata is not a JSON object; the file is not one composer wrote")
    for key, kinds in META_TYPES.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise DataError(f"{path}: its metadata's {key!r} is {_show(value)}, not a {kinds[0].__name__}")
    if meta.get("size") not in (None, "tiny", "full"):
        raise DataError(f"{path}: its metadata's 'size' is {_show(meta['size'])}, not tiny or full")
    if not all(isinstance(c, str) for c in meta.get("classes") or []):
        raise DataError(f"{path}: its metadata's 'classes' are not all names (strings)")
    return meta


def _show(value: Any) -> str:
    """A value from a file, short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_trainable(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and header of a trainable-only file, verified: readable, a composer file, the tensors'
    SHA-256 as saved, every tensor finite. Whether they fit a model is copy_into's check."""
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # a truncated or foreign file
        raise DataError(f"{path} is not a readable composer checkpoint ({type(e).__name__}: {e})") from None
    if "fingerprint" not in header:
        raise DataError(f"{path} is not a composer checkpoint (no fingerprint in its header)")
    if DIGEST_KEY not in header:
        raise DataError(f"{path} has no checksum of its tensors (written by an earlier composer); it cannot be "
                        "verified, so it is refused")
    if tensor_digest(tensors) != header[DIGEST_KEY]:
        raise DataError(f"{path} is corrupted: its tensors' SHA-256 differs from the one in its header (the file "
                        "changed after it was written)")
    bad = non_finite(tensors)
    if bad:
        raise DataError(f"{path} holds NaN or infinite values in {', '.join(bad[:5])}"
                        + (f" and {len(bad) - 5} more tensor(s)" if len(bad) > 5 else "") + "; refusing to load it")
    return tensors, header


def load_trainable(model, path: str | Path) -> dict[str, Any]:
    """Load a trainable-only checkpoint (a file, a checkpoint directory or a checkpoints folder), verified;
    refuse one made for a different model (SpecError with the differences). Returns its metadata."""
    path = weights_file(path)
    try:
        tensors, header = read_trainable(path)
    except DataError as e:
        raise _offered(path.parent, e) if path.name == WEIGHTS else e from None
    meta = _meta(header, path)
    if header["fingerprint"] != fingerprint(model):
        diffs = _differences(_structure_of(header), structure(model))
        raise SpecError(f"{path} was saved from a different model; refusing to load it",
                        hint="; ".join(diffs) or "the fingerprints differ")
    copy_into(model, tensors, path)
    return meta
