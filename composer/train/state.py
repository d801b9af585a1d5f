"""Everything a run needs to continue after an interruption, without pickle.

At the end of every epoch a run writes, atomically: the trainable weights (`last.safetensors`, the
same format as every composer checkpoint), the optimiser and scheduler state and the random-number
generators (`resume.safetensors` for tensors, `resume.json` for the rest). `--resume RUN_DIR` reads
them back and continues with the next epoch, so an interrupted run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from composer.build.checkpoint import atomic_write, load_trainable, save_trainable


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                plain[f"{index}.{key}"] = value
    return tensors, {"param_groups": [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
                                      for g in state["param_groups"]], "scalars": plain}


def save_state(folder: Path, model, optimizer, scheduler, progress: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write last.safetensors, resume.safetensors and resume.json into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    save_trainable(model, folder / "last.safetensors", meta)
    tensors, structure = _optimizer_tensors(optimizer)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    atomic_write(folder / "resume.safetensors", lambda tmp: save_file(tensors, tmp))
    record = {"progress": progress, "optimizer": structure, "scheduler": scheduler.state_dict(),
              "python_rng": random.getstate()[1], "meta": meta}
    atomic_write(folder / "resume.json", lambda tmp: Path(tmp).write_text(json.dumps(_jsonable(record))))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if torch.is_tensor(value):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def load_state(folder: Path, model, optimizer=None, scheduler=None) -> dict[str, Any]:
    """Restore weights and generators, and the optimiser and scheduler when given (not at the start of a
    new stage, whose optimiser is new); return the saved progress."""
    load_trainable(model, folder / "last.safetensors")
    record = json.loads((folder / "resume.json").read_text())
    with safe_open(str(folder / "resume.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    state: dict[str, Any] = {"state": {}, "param_groups": record["optimizer"]["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state["state"].setdefault(int(index), {})[name] = value
    for key, value in record["optimizer"]["scalars"].items():
        index, name = key.split(".", 1)
        state["state"].setdefault(int(index), {})[name] = value
    if optimizer is not None:
        optimizer.load_state_dict(state)
    if scheduler is not None:
        scheduler.load_state_dict(record["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    random.setstate((3, tuple(record["python_rng"]), None))
    return record["progress"]
