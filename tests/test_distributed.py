"""Two processes with DDP over gloo on the CPU: the trainable weights stay identical across ranks after a
step, and the distributed evaluation equals a single-process one."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from rich.console import Console
from safetensors.torch import load_file, save_file

from composer.train.run import Run, RunOptions

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, demo_root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    options = RunOptions(dataset="demo", data_root=demo_root, tiny=True, epochs=1, max_steps=2, batch_size=4,
                         workers=0, out=out, sets=list(SMALL), seed=0, device="cpu")
    job = Run("specs/baselines/clip-adapter.yaml", options, console=Console(quiet=True))
    summary = job.fit()
    save_file({k: v.detach().contiguous() for k, v in job.model.trainable_state().items()},
              f"{out}/rank{rank}.safetensors")
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"top1": summary["parts"]["test"]["top1"], "run_dir": str(job.dir)}, f)
    torch.distributed.barrier()
    from composer.train.distributed import teardown

    teardown(job.world)


def test_two_processes_agree_and_match_a_single_process_evaluation(demo_root, tmp_path):
    out = str(tmp_path)
    mp.start_processes(_worker, args=(2, _free_port(), str(demo_root), out), nprocs=2, join=True,
                       start_method="spawn")
    a, b = load_file(f"{out}/rank0.safetensors"), load_file(f"{out}/rank1.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    moved = [key for key in a if a[key].abs().sum() > 0 and "up" in key]
    assert moved, "the step changed the zero-initialised up-projections"
    top1 = [json.load(open(f"{out}/rank{r}.json"))["top1"] for r in (0, 1)]
    assert top1[0] == top1[1]
    run_dir = json.load(open(f"{out}/rank0.json"))["run_dir"]
    single = Run("specs/baselines/clip-adapter.yaml",
                 RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, workers=0, out=str(tmp_path / "single"),
                            sets=list(SMALL), seed=0, device="cpu"), console=Console(quiet=True))
    from composer.build.checkpoint import load_trainable

    load_trainable(single.model, f"{run_dir}/checkpoints/last.safetensors")
    assert single.test()["parts"]["test"]["top1"] == pytest.approx(top1[0])
