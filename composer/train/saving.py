"""Saving while a run trains: the state to resume from (every epoch, every --save-every steps, on a cluster's
signal) and the best checkpoint. On several processes every rank takes part in what is collective (under FSDP,
gathering the whole trainable tensors and optimiser state: composer/train/fsdp_state.py); the main process
writes, as any other run's checkpoint (composer/rundir/state.py, composer/rundir/checkpoint.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from composer.rundir.checkpoint import save_trainable
from composer.rundir.checkpoint_dir import describe, latest_checkpoint
from composer.rundir.state import save_state
from composer.train.fsdp_state import gather_optimizer_state


@dataclass
class Saver:
    """`folder`: the run's checkpoints folder. `kept`: the last state saved, described (what a stop on a NaN
    loss leaves to resume from), or None before the first save."""

    accelerator: Accelerator
    model: Any
    folder: Path
    fsdp: bool
    kept: str | None = None

    def state(self, net, optimizer, scheduler, progress: dict[str, Any], meta: dict[str, Any]) -> None:
        """The state to resume from (at an epoch's end, or mid-epoch with progress["position"])."""
        main = self.accelerator.is_main_process
        tensors, whole = self._trainable(net), None
        if self.fsdp:
            whole = gather_optimizer_state(net, optimizer, main)
        if main:
            save_state(self.folder, self.accelerator.unwrap_model(net), optimizer, scheduler, progress, meta,
                       tensors=tensors, optimizer_state=whole)
        kept = latest_checkpoint(self.folder) if main else None
        self.kept = describe(kept) if kept else None

    def best(self, net, meta: dict[str, Any]) -> None:
        """best.safetensors: the trainable weights of the best epoch so far."""
        tensors = self._trainable(net)
        if self.accelerator.is_main_process:
            save_trainable(self.accelerator.unwrap_model(net), self.folder / "best.safetensors", meta, tensors)

    def _trainable(self, net) -> dict[str, torch.Tensor] | None:
        """Under FSDP every rank takes part in gathering the full trainable tensors; otherwise None (each
        rank's unwrapped model holds them whole)."""
        if not self.fsdp:
            return None
        full = self.accelerator.get_state_dict(net)
        return {n: full[n] for n in self.model.trainable_state()} if self.accelerator.is_main_process else None
