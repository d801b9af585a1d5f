"""Everything a run needs to continue after an interruption, as one verified checkpoint, without pickle.

`save_state` writes one checkpoint directory (layout and publishing: composer/rundir/checkpoint_dir.py):
the trainable weights, the optimiser's tensors and the random generators' states (torch, CUDA,
Python's `random`, NumPy) in state.safetensors, and in state.json the progress dict the run passes
(opaque here: stage, epoch, step, best, data position...), the optimiser's structure, the scheduler
and `meta`. The manifest records the stage, epoch and step, the model's fingerprint, the seed and the
recipe of anything regenerated rather than saved (tiny backbones: size and seed). `load_state` takes
the checkpoint `latest` names, verifies it, and restores it exactly, so a resumed run ends with the same
weights as an uninterrupted one; a checkpoint that fails verification is refused with the file, the
reason and the previous checkpoint that verifies (never used without being asked).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load, save

from composer.compiler.fingerprint import fingerprint, identity
from composer.errors import DataError, SpecError
from composer.rundir.checkpoint import copy_into, non_finite, read_trainable, trainable_bytes
from composer.rundir.checkpoint_dir import (
    STATE_JSON,
    STATE_TENSORS,
    WEIGHTS,
    latest_checkpoint,
    publish,
    refuse_with_offer,
    verify_checkpoint,
)
from composer.rundir.resume import progress_problem


def _optimizer_tensors(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state_dict as tensors (for safetensors) and the rest (for JSON)."""
    tensors, plain = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": plain}


def _rng_states() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return tensors, {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if torch.is_tensor(value):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def save_state(folder: Path, model, optimizer, scheduler, progress: dict[str, Any], meta: dict[str, Any],
               keep: int = 2, tensors: dict[str, torch.Tensor] | None = None,
               optimizer_state: dict[str, Any] | None = None) -> Path:
    """Publish one checkpoint into `folder` (RUN_DIR/checkpoints) and prune to the newest `keep`; return
    its directory. `optimizer`/`scheduler` None: weights only, not resumable. When the model and the
    optimiser hold shards (FSDP: composer/train/fsdp_state.py), `tensors` are the whole trainable tensors
    and `optimizer_state` the optimiser's whole state in a one-process layout. A full disk or an I/O error
    is a DataError naming the previous checkpoint, which stays the latest."""
    ident = identity(model, tensors)  # composer version, spec and digest, fingerprint: in each file and the manifest
    files = {WEIGHTS: trainable_bytes(model, meta, tensors, ident)}
    rng_tensors, rng = _rng_states()
    record: dict[str, Any] = {"progress": progress, "meta": meta, "rng": rng}
    state_tensors = dict(rng_tensors)
    if optimizer is not None:
        optimizer_tensors, record["optimizer"] = _optimizer_tensors(optimizer_state or optimizer.state_dict())
        state_tensors.update(optimizer_tensors)
        record["scheduler"] = scheduler.state_dict()
    files[STATE_TENSORS] = save(state_tensors, metadata={**ident, **{
        k: str(meta.get(k, progress.get(k))) for k in ("stage", "epoch", "step")}})
    files[STATE_JSON] = json.dumps(_jsonable(record)).encode()
    size = meta.get("size")
    return publish(folder, files, {
        # where training was, as people count it (as metrics.jsonl and the logs do): the stage's name, the epoch
        # from 1, the batches done in it (0: at its end); state.json's progress is the machine's count
        "stage": meta.get("stage", progress.get("stage")), "epoch": meta.get("epoch", progress.get("epoch")),
        "batch": meta.get("batch", 0),
        "step": meta.get("step", progress.get("step", 0)),  # the global optimiser step (mid-epoch saves too)
        "fingerprint": ident["fingerprint"], "seed": meta.get("seed"),
        "recipe": {"size": size, "seed": meta.get("seed") if size == "tiny" else None},
        "resumable": optimizer is not None}, keep)


def _checkpoint(folder: Path, checkpoint: Path | None) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to load (`checkpoint`, else the latest) and its verified manifest."""
    path = checkpoint or latest_checkpoint(folder)
    if path is None:
        old = " (it holds resume.json: a run of an earlier composer, which cannot be resumed)" \
            if (folder / "resume.json").exists() else ""
        raise DataError(f"{folder} holds no checkpoint{old}")
    try:
        return path, verify_checkpoint(path)
    except DataError as e:
        raise refuse_with_offer(folder, path, e) from None


def _record(path: Path) -> dict[str, Any]:
    """state.json of a verified checkpoint, checked to be an object with a progress dict and generator states."""
    try:
        record = json.loads((path / STATE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise DataError(f"{path / STATE_JSON} is not readable JSON") from None
    if not (isinstance(record, dict) and isinstance(record.get("progress"), dict) and isinstance(record.get("rng"), dict)):
        raise DataError(f"{path / STATE_JSON} is not a state composer wrote (no progress or generator states)")
    return record


def saved_progress(folder: Path, checkpoint: Path | None = None) -> dict[str, Any]:
    """The progress dict stored in the latest (or the given) checkpoint, after verifying it."""
    path, _ = _checkpoint(folder, checkpoint)
    try:
        return _record(path)["progress"]
    except DataError as e:
        raise refuse_with_offer(folder, path, e) from None


def check_resumable(folder: Path, stages: int) -> None:
    """The latest checkpoint verifies and records a progress a run of `stages` stages can continue from."""
    problem = progress_problem(saved_progress(folder), stages)
    if problem:
        raise DataError(f"{latest_checkpoint(folder)}: {problem}; it cannot be resumed")


def load_state(folder: Path, model, optimizer=None, scheduler=None, checkpoint: Path | None = None,
               load_optimizer: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Verify the latest checkpoint in `folder` (or `checkpoint`), then restore the weights and the
    generators, and the optimiser and scheduler when given (not at the start of a new stage, whose
    optimiser is new); return the saved progress. The weights must be exactly the model's trainable
    tensors (names, shapes, dtypes), the optimiser's and the schedule's state laid out as this run's own; a
    state that does not restore is refused with a DataError. `load_optimizer`: what takes the optimiser's
    checked state instead of `optimizer.load_state_dict` (FSDP loads it into shards once the model is wrapped)."""
    path, manifest = _checkpoint(folder, checkpoint)
    if optimizer is not None and not manifest.get("resumable"):
        raise DataError(f"{path} holds weights only (no optimiser state: an --fsdp run of an earlier "
                        "composer saved no more); it cannot be resumed, only evaluated")
    try:
        weights, header = read_trainable(path / WEIGHTS)
        state_tensors = load((path / STATE_TENSORS).read_bytes())
        bad = non_finite({k: v for k, v in state_tensors.items() if k.startswith("optimizer.")})
        if bad:
            raise DataError(f"{path / STATE_TENSORS} holds NaN or infinite optimiser state in {', '.join(bad[:5])}")
        record = _record(path)
    except DataError as e:
        raise refuse_with_offer(folder, path, e) from None
    except Exception as e:  # safetensors' own errors: a state file that is not one
        raise refuse_with_offer(folder, path, DataError(f"{path / STATE_TENSORS} cannot be read ({type(e).__name__})")) \
            from None
    if header["fingerprint"] != fingerprint(model):
        raise SpecError(f"{path} was saved from a different model; refusing to resume from it",
                        hint="the run's spec or options changed since the checkpoint was written")
    copy_into(model, weights, path / WEIGHTS)
    if optimizer is not None:
        (load_optimizer or optimizer.load_state_dict)(_optimizer_state(record.get("optimizer"), state_tensors,
                                                                       optimizer, path))
    if scheduler is not None:
        if not _same_layout(record.get("scheduler"), scheduler.state_dict()):
            raise DataError(f"{path / STATE_JSON} holds a schedule state that is not this run's")
        scheduler.load_state_dict(record["scheduler"])
    try:
        _restore_rng(record["rng"], state_tensors)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, RuntimeError) as e:  # what setstate raises
        raise DataError(f"{path / STATE_JSON} holds generator states that do not restore ({type(e).__name__}: "
                        f"{str(e)[:100]})") from None
    return record["progress"]


def _same_layout(saved: Any, current: Any) -> bool:
    """Whether a state read back from JSON has the layout of the live one: the same keys, list lengths and
    kinds of value (a JSON list for a tuple; any finite number for a float)."""
    if isinstance(current, dict):
        return isinstance(saved, dict) and saved.keys() == current.keys() and \
            all(_same_layout(saved[k], v) for k, v in current.items())
    if isinstance(current, (list, tuple)):
        return isinstance(saved, list) and len(saved) == len(current) and \
            all(_same_layout(a, b) for a, b in zip(saved, current))
    if isinstance(current, bool) or current is None or isinstance(current, str):
        return type(saved) is type(current)
    if isinstance(current, int):
        return type(saved) is int
    if isinstance(current, float):
        return type(saved) in (int, float) and math.isfinite(saved)
    return True  # a callable the schedule holds (saved as null, not restored)


def _optimizer_state(structure: Any, tensors: dict[str, torch.Tensor], optimizer, path: Path) -> dict[str, Any]:
    """The optimiser's state_dict back from tensors and JSON (whose lists become tuples again where the
    optimiser holds tuples, e.g. AdamW's betas), checked against the live optimiser: the same parameter
    groups, and per-parameter state tensors of their parameter's shape."""
    current = optimizer.state_dict()["param_groups"]
    if not (isinstance(structure, dict) and _same_layout(structure.get("param_groups"), current)
            and isinstance(structure.get("scalars"), dict)):
        raise DataError(f"{path / STATE_JSON} holds an optimiser state that is not this run's (its parameter groups "
                        "differ)")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    groups = [{k: tuple(v) if isinstance(v, list) and isinstance(now.get(k), tuple) else v for k, v in saved.items()}
              for saved, now in zip(structure["param_groups"], current)]
    state: dict[str, Any] = {"state": {}, "param_groups": groups}
    entries = [(key.removeprefix("optimizer."), value) for key, value in tensors.items() if key.startswith("optimizer.")]
    entries += list(structure["scalars"].items())
    for key, value in entries:
        index, _, name = key.partition(".")
        if not (index.isdigit() and int(index) < len(params) and name):
            raise DataError(f"{path}: the optimiser state {key!r} names no parameter of this run")
        if torch.is_tensor(value) and value.dim() and value.shape != params[int(index)].shape:
            raise DataError(f"{path}: the optimiser state {key!r} has shape {list(value.shape)}, its parameter "
                            f"{list(params[int(index)].shape)}")
        if not torch.is_tensor(value) and not (type(value) in (int, float) and math.isfinite(value)):
            raise DataError(f"{path}: the optimiser state {key!r} is not a number")
        state["state"].setdefault(int(index), {})[name] = value
    return state


def _restore_rng(rng: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
