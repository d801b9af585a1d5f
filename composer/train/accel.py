"""The Hugging Face Accelerator a run trains and evaluates through: device, processes, precision, accumulation.

One process (`composer run`), several on one machine or across machines (`torchrun ... -m composer.cli run`,
`accelerate launch ... -m composer.cli run`): Accelerate reads the launcher's environment, joins the
process group (NCCL on GPUs, gloo on CPUs) and gives every rank the GPU of its local rank. composer
only decides what the command line asks for and refuses what it cannot do exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedDataParallelKwargs, FullyShardedDataParallelPlugin, GradientAccumulationPlugin

from composer.compiler.precision import resolve_precision as auto_precision
from composer.errors import DataError

MIXED = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}


@dataclass(frozen=True)
class AccelOptions:
    device: str | None  # None: the GPU when there is one; cpu; cuda; cuda:N (one process only)
    precision: str  # auto, bf16, fp16 or fp32
    accumulate: int = 1
    fsdp: bool = False
    log_with: Sequence[str] = ()
    run_dir: Path | None = None


def _launched_processes() -> int:
    """How many processes the launcher (torchrun, accelerate launch) started; 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _use_cpu(device: str | None) -> bool:
    """Check --device against this machine and pick the GPU for `cuda:N` (a single process only)."""
    if device is None:
        return not torch.cuda.is_available()
    if device == "cpu":
        return True
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DataError(f"--device {device} is not a device composer knows: use cpu, cuda or cuda:N")
    if index and _launched_processes() > 1:
        raise DataError(f"--device {device} puts one GPU on every one of the {_launched_processes()} processes; "
                        "under torchrun or accelerate launch each process uses the GPU of its local rank: "
                        "pass --device cuda (choose GPUs with CUDA_VISIBLE_DEVICES)")
    if not torch.cuda.is_available():
        raise DataError(f"--device {device}: no CUDA GPU is visible to this process; use --device cpu")
    if index:
        if int(index) >= torch.cuda.device_count():
            raise DataError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
        torch.cuda.set_device(int(index))
    return False


def training_precision(precision: str, cpu: bool) -> str:
    """`auto` is bf16 on GPUs that support it, fp32 otherwise; fp16 needs a GPU (its loss scaling is CUDA's)."""
    if precision == "auto":
        return auto_precision(precision, cpu)
    if precision == "fp16" and cpu:
        raise DataError("fp16 training needs a GPU (no loss scaling on the CPU); use --precision bf16 or fp32")
    return precision


def start_processes(device: str | None) -> PartialState:
    """Join the launcher's process group (a single process needs none) on the device --device asks for:
    before the Accelerator, so the main process can name the run directory its trackers write to."""
    return PartialState(cpu=_use_cpu(device))


def make_fsdp_plugin():
    """FSDP1 over the module's original parameters: frozen and trainable tensors share the sharded units of a
    partly frozen model, and the parameters keep their names, under which composer/train/fsdp_state.py
    saves the optimiser's state."""
    return FullyShardedDataParallelPlugin(fsdp_version=1, use_orig_params=True, state_dict_type="FULL_STATE_DICT")


def check_accel(options: AccelOptions) -> str:
    """Refuse what the Accelerator cannot do exactly (before a run directory is made); the precision it
    resolves to."""
    cpu = _use_cpu(options.device)
    precision = training_precision(options.precision, cpu)
    if options.fsdp:
        if cpu:
            raise DataError("--fsdp shards a model across GPUs; it does not run on the CPU (drop --fsdp)")
        if _launched_processes() < 2:
            raise DataError("--fsdp shards the model across processes: launch several with torchrun or "
                            "accelerate launch (one process trains without it)")
    return precision


def make_accelerator(options: AccelOptions) -> tuple[Accelerator, str]:
    """The Accelerator for a run, and the precision it resolved to."""
    precision = check_accel(options)
    cpu = _use_cpu(options.device)
    fsdp_plugin = make_fsdp_plugin() if options.fsdp else None
    if AcceleratorState._shared_state:
        # a process that runs several runs one after another (tests, a notebook): the new run's precision and
        # plugins win; the process group and device (PartialState) stay
        AcceleratorState._reset_state()
    accelerator = Accelerator(
        cpu=cpu, mixed_precision=MIXED[precision], fsdp_plugin=fsdp_plugin,
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=options.accumulate),
        # the run steps its schedule once per optimiser step itself, the same count on any number of processes
        step_scheduler_with_optimizer=False,
        # stages train different parts, so some parameters get no gradient in a step
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        log_with=list(options.log_with) or None,
        project_dir=str(options.run_dir) if options.run_dir else None)
    return accelerator, precision


def per_process_batch(global_batch: int, processes: int) -> int:
    """The batch size is the global batch of one optimiser step (before accumulation), split evenly."""
    if global_batch % processes:
        raise DataError(f"the batch size {global_batch} is the global batch, split evenly across processes, but "
                        f"{processes} processes do not divide it; use a --batch-size that is a multiple of {processes}")
    return global_batch // processes


def device_name(accelerator: Accelerator) -> str:
    """The accelerator's device with its index (`cuda:1`, not `cuda`), for code that places tensors itself."""
    device = accelerator.device
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def compiled(net, console):
    """torch.compile(net), falling back to eager execution (with a message through `console.print`) if
    compiling fails."""
    fast = torch.compile(net)
    state = {"net": fast}

    def forward(*args, **kwargs):
        try:
            return state["net"](*args, **kwargs)
        except Exception as e:  # any compiler failure: dynamo, inductor, a missing C++ toolchain
            if state["net"] is net:
                raise
            console.print(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); running eagerly")
            state["net"] = net
            return net(*args, **kwargs)

    return forward
