"""An FSDP run resumes exactly: two processes, the model sharded by torch's FSDP1 through Accelerate's own
prepare. On the CPU (gloo) Accelerate would not shard (its CPU processes use DDP), so the workers turn the run's
Accelerator into an FSDP one after composer made it; everything else is the run's own code. The CUDA form
(NCCL, unpatched) needs two GPUs: benchmarks/gpu_check.sh runs it where it finds them."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from accelerate.state import PartialState
from accelerate.utils import DistributedType
from rich.console import Console
from safetensors.torch import load_file
from test_distributed import _free_port, _spawn

from composer.rundir.checkpoint_dir import FILES, MANIFEST, latest_checkpoint
from composer.rundir.resume import read_record, resumed_options
from composer.train import accel
from composer.train import run as run_module
from composer.train.run import Run, RunOptions

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


def _dataset(root) -> None:
    from conftest import write_video

    for i in range(8):
        write_video(root / f"v{i}.mp4", seed=i)
    for i in range(2):
        write_video(root / f"t{i}.mp4", seed=100 + i)
    (root / "classes.txt").write_text("a\nb\n")
    (root / "train.txt").write_text("".join(f"v{i}.mp4 {'ab'[i % 2]}\n" for i in range(8)))
    (root / "test.txt").write_text("".join(f"t{i}.mp4 {'ab'[i % 2]}\n" for i in range(2)))


def _sharded_on_the_cpu() -> None:
    """make_accelerator as the run calls it, then, for --fsdp, switched to FSDP with the plugin --fsdp uses (and
    check_accel without the refusal of --fsdp on the CPU)."""
    made = accel.make_accelerator

    def make(options):
        accelerator, precision = made(dataclasses.replace(options, fsdp=False))
        if not options.fsdp:
            return accelerator, precision
        # both shared states: a later AcceleratorState() copies the process state's over its own. FSDP's CPU
        # device has no index (Accelerate's processes name theirs cpu:0)
        for state in (PartialState(), accelerator.state):
            state.distributed_type, state.device = DistributedType.FSDP, torch.device("cpu")
        accelerator.state.fsdp_plugin = accel.make_fsdp_plugin()
        return accelerator, precision

    run_module.make_accelerator = make
    run_module.check_accel = lambda options: accel.check_accel(dataclasses.replace(options, fsdp=False))


def _stopped_after_the_save_at(batches: int) -> None:
    """Every process stops (KeyboardInterrupt) right after the mid-epoch save at `batches` batches."""
    original = run_module.train_epoch

    def interrupted(*args, **kwargs):
        save = kwargs["on_save"]

        def on_save(at):
            save(at)
            if at.batches == batches:
                raise KeyboardInterrupt

        return original(*args, **(kwargs | {"on_save": on_save}))

    run_module.train_epoch = interrupted


def _worker(rank: int, world: int, port: int, root: str, out: str, device: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    if device == "cpu":
        _sharded_on_the_cpu()
    options = RunOptions(dataset="list", data_root=root, tiny=True, epochs=1, max_steps=4, save_every=2, batch_size=2,
                         workers=0, sets=list(SMALL), seed=0, device=device, precision="fp32", log_with=["none"],
                         fsdp=True)
    straight = Run("specs/baselines/clip-adapter.yaml", dataclasses.replace(options, out=f"{out}/a"),
                   console=Console(quiet=True))
    straight.fit()
    sharded = type(straight.net).__name__  # (finish() would leave the process group the next runs use)
    original = run_module.train_epoch
    _stopped_after_the_save_at(2)
    first = Run("specs/baselines/clip-adapter.yaml", dataclasses.replace(options, out=f"{out}/b"),
                console=Console(quiet=True))
    try:
        first.fit()
    except KeyboardInterrupt:
        first.accelerator.wait_for_everyone()  # the main process has written the checkpoint
    run_module.train_epoch = original
    resumed = Run(None, resumed_options(read_record(first.dir), {}, [])[0], resume=first.dir,
                  console=Console(quiet=True))
    resumed.fit()
    resumed.finish()
    if rank == 0:
        with open(f"{out}/dirs.json", "w") as f:
            json.dump({"a": str(straight.dir), "b": str(first.dir), "wrapper": sharded}, f)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs a GPU per process: 2")])])
def test_an_fsdp_run_stopped_inside_an_epoch_resumes_to_the_same_weights(tmp_path, device):
    """Budget: ~90 s on two shared cores (two processes; three tiny runs of at most four steps each). The
    stopped run saved at step 2 (weights and the optimiser's state gathered whole into safetensors), the
    resumed one scatters them back into the shards and ends where the uninterrupted run ended: bit for bit on
    the CPU, to float tolerance on GPUs (whose kernels need not repeat exactly)."""
    root = tmp_path / "data"
    _dataset(root)
    _spawn(_worker, (2, _free_port(), str(root), str(tmp_path), device), seconds=240)
    dirs = json.loads((tmp_path / "dirs.json").read_text())
    assert dirs["wrapper"] == "FullyShardedDataParallel"
    ends = []
    for run in ("a", "b"):
        checkpoint = latest_checkpoint(Path(dirs[run]) / "checkpoints")
        manifest = json.loads((checkpoint / MANIFEST).read_text())
        assert manifest["resumable"] and manifest["step"] == 4
        assert sorted(p.name for p in checkpoint.iterdir()) == sorted([*FILES, MANIFEST])  # nothing pickled
        ends.append((load_file(checkpoint / "weights.safetensors"), load_file(checkpoint / "state.safetensors")))
    (weights_a, state_a), (weights_b, state_b) = ends
    assert weights_a.keys() == weights_b.keys() and any("up" in k and weights_a[k].abs().sum() > 0 for k in weights_a)
    same = torch.equal if device == "cpu" else lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    for key in weights_a:
        assert same(weights_a[key], weights_b[key]), key
    moments = [k for k in state_a if k.startswith("optimizer.")]
    assert moments and all(same(state_a[k], state_b[k]) for k in moments)
    log = (Path(dirs["b"]) / "run.log").read_text()
    assert "resuming" in log and "batch 3" in log
