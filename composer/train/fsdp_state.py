"""An FSDP run's optimiser state, gathered whole for a checkpoint and scattered back into shards on resume.

Under FSDP every rank's optimiser holds the state of its own shard of each parameter (flattened, sometimes
empty), so `optimizer.state_dict()` on one rank is not the run's state. These functions turn it into the
layout of a one-process optimiser (parameters numbered in the optimiser's order, each state tensor of its
parameter's whole shape) and back, so an FSDP checkpoint is written, verified and read by the same code as
any other (composer/rundir/state.py: safetensors and JSON, never pickle; docs/design-notes.md says why not
Accelerate's save_state). Only FSDP1 with `use_orig_params=True` (how composer/train/accel.py makes it):
its parameters stay the module's own, so their names are the unwrapped model's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig, StateDictType
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from composer.compiler.compile import BuildOptions, compile_spec
from composer.errors import DataError
from composer.spec.ir import Spec


def check_shardable(spec: Spec, options: BuildOptions) -> None:
    """Refuse a spec that trains a parameter without dimensions (built on the meta device, before the run
    starts): FSDP1 refuses 0-d parameters, and a copy kept outside FSDP would get no gradient."""
    model = compile_spec(spec, replace(options, device="meta"))
    scalars = [n for n, p in model.trainable_state().items() if p.dim() == 0]
    if scalars:
        raise DataError(f"--fsdp cannot shard {scalars[0]}: the spec trains it and it has no dimensions, which "
                        "FSDP refuses; run without --fsdp (every process then holds the whole model)")


def scalars_as_buffers(model: torch.nn.Module) -> None:
    """Make every frozen parameter without dimensions (CLIP's logit scale, ViCLIP's temperature) a buffer of
    the same name and value before FSDP wraps the model: FSDP1 refuses 0-d parameters, while a buffer is
    broadcast like any other and reads the same in the forward and in state dicts. Only parameters no stage
    trains (check_shardable refuses the others before the run starts)."""
    trained = set(model.trainable_state())
    for name, param in list(model.named_parameters()):
        if param.dim() == 0 and name not in trained:
            owner_name, _, attribute = name.rpartition(".")
            owner = model.get_submodule(owner_name)
            del owner._parameters[attribute]
            owner.register_buffer(attribute, param.detach())


def before_sharding(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> list[str]:
    """Before FSDP wraps the model: frozen scalars become buffers; returns the names of the optimiser's
    parameters, by which its state is saved ([] without an optimiser)."""
    scalars_as_buffers(model)
    return parameter_names(model, optimizer) if optimizer is not None else []


def _whole(net, rank0_only: bool):
    """FSDP's whole-state context, on rank 0 alone or every rank: a GPU model's tensors are gathered into
    CPU memory (the whole state need not fit one GPU). Not a CPU model's: there FSDP1's offload returns one
    buffer for every state of a parameter (exp_avg read back as exp_avg_sq; tests/test_fsdp_resume.py)."""
    offload = next(net.parameters()).device.type != "cpu"
    return FSDP.state_dict_type(net, StateDictType.FULL_STATE_DICT,
                                FullStateDictConfig(offload_to_cpu=offload, rank0_only=rank0_only),
                                FullOptimStateDictConfig(offload_to_cpu=offload, rank0_only=rank0_only))


def parameter_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each parameter the optimiser holds, in its order (call it before FSDP wraps the model)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def gather_optimizer_state(net, optimizer: torch.optim.Optimizer, main: bool) -> dict[str, Any] | None:
    """Every rank takes part; the main process receives the optimiser's whole state in a one-process
    optimiser's layout (what `optimizer.state_dict()` returns without FSDP), the others None."""
    with _whole(net, rank0_only=True):
        whole = FSDP.optim_state_dict(net, optimizer)
    if not main:
        return None
    names = [name for group in whole["param_groups"] for name in group["params"]]
    index = {name: i for i, name in enumerate(names)}
    return {"state": {index[name]: entry for name, entry in whole["state"].items()},
            "param_groups": [dict(group, params=[index[n] for n in group["params"]]) for group in whole["param_groups"]]}


def scatter_optimizer_state(net, optimizer: torch.optim.Optimizer, state: dict[str, Any], names: list[str]) -> None:
    """Load a whole state in a one-process optimiser's layout (checked against the run's optimiser by
    composer/rundir/state.py) into every rank's sharded optimiser; `names` from parameter_names."""
    whole = {"state": {names[i]: entry for i, entry in state["state"].items()},
             "param_groups": [dict(group, params=[names[i] for i in group["params"]])
                              for group in state["param_groups"]]}
    with _whole(net, rank0_only=False):
        optimizer.load_state_dict(FSDP.optim_state_dict_to_load(net, optimizer, whole))
