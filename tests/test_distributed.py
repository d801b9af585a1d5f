"""Two processes over gloo on the CPU, through Accelerate: the trainable weights stay identical across ranks
after a step, the distributed evaluation (with an uneven last batch) equals a single-process one, a batch
the processes do not divide is refused, a process whose whole batch is undecodable does not hang the others,
and `accelerate launch` runs `composer run`."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp
from rich.console import Console
from safetensors.torch import load_file, save_file

from composer.errors import DataError
from composer.train.loop import EpochOrder
from composer.train.run import Run, RunOptions

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]
GLOBAL_BATCH = 6  # 3 per process; the 128 test clips leave an uneven last batch (128 = 21 * 6 + 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _options(demo_root: str, out: str, **kw) -> RunOptions:
    base = dict(dataset="demo", data_root=demo_root, tiny=True, epochs=1, max_steps=2, batch_size=GLOBAL_BATCH,
                workers=0, out=out, sets=list(SMALL), seed=0, device="cpu", log_with=["none"])
    return RunOptions(**(base | kw))


def _worker(rank: int, world: int, port: int, demo_root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    try:
        Run("specs/baselines/clip-adapter.yaml", _options(demo_root, out, batch_size=5), console=Console(quiet=True))
        refused = ""
    except DataError as e:
        refused = str(e)
    job = Run("specs/baselines/clip-adapter.yaml", _options(demo_root, out), console=Console(quiet=True))
    summary = job.fit()
    save_file({k: v.detach().contiguous() for k, v in job.model.trainable_state().items()},
              f"{out}/rank{rank}.safetensors")
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"top1": summary["parts"]["test"]["top1"], "count": summary["parts"]["test"]["count"],
                   "run_dir": str(job.dir), "refused": refused, "batch": job.settings.batch_size}, f)
    job.finish()


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
    ranks = [json.load(open(f"{out}/rank{r}.json")) for r in (0, 1)]
    assert ranks[0]["run_dir"] == ranks[1]["run_dir"]
    assert all(r["batch"] == GLOBAL_BATCH // 2 for r in ranks)
    assert all("batch size 5" in r["refused"] and "2 processes" in r["refused"] for r in ranks)
    assert ranks[0]["top1"] == ranks[1]["top1"]
    assert ranks[0]["count"] == ranks[1]["count"] == 128  # the padding of the uneven last batch was dropped
    record = json.loads(open(f"{ranks[0]['run_dir']}/metrics.jsonl").read().splitlines()[0])
    assert record["clips"] == 2 * GLOBAL_BATCH  # two steps of the global batch
    single = Run("specs/baselines/clip-adapter.yaml", _options(str(demo_root), str(tmp_path / "single")),
                 console=Console(quiet=True))
    from composer.rundir.checkpoint import load_trainable

    load_trainable(single.model, f"{ranks[0]['run_dir']}/checkpoints")
    result = single.test()["parts"]["test"]
    assert result["count"] == 128 and result["top1"] == pytest.approx(ranks[0]["top1"])


def test_accelerate_launch_runs_composer_on_two_processes(demo_root, tmp_path):
    # --multi_gpu starts the processes through torchrun; without GPUs they join over gloo (--cpu would need MPI)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "composer.cli", "run",
               "specs/baselines/clip-adapter.yaml", "--dataset", "demo", "--data-root", str(demo_root), "--size", "tiny",
               "--workers", "0", "--device", "cpu", "--batch-size", "4", "--max-steps", "1", "--epochs", "1", "--seed", "0",
               "--log-with", "none", "--out", str(tmp_path / "runs")] + [a for s in SMALL for a in ("--set", s)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["processes"] == 2 and info["per_process_batch"] == 2
    assert json.loads((run_dir / "summary.json").read_text())["parts"]["test"]["count"] == 128
    assert done.stdout.count("run directory") == 1  # the main process alone prints (and writes)


def _spawn(worker, args: tuple, seconds: float) -> None:
    """Two processes running `worker`; a test failure (not a stuck suite) when they have not ended in time."""
    context = mp.start_processes(worker, args=args, nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + seconds
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the processes did not end within {seconds:.0f} s: a hang")


def _undecodable_batch_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    job = Run("specs/baselines/clip-adapter.yaml", _options(root, out, dataset="list"), console=Console(quiet=True))
    summary = job.fit()
    save_file({k: v.detach().contiguous() for k, v in job.model.trainable_state().items()},
              f"{out}/rank{rank}.safetensors")
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"run_dir": str(job.dir), "bad": summary["bad_videos"]}, f)
    job.finish()


def test_a_process_whose_whole_batch_is_undecodable_takes_part_and_the_step_matches_one_process(tmp_path):
    """Budget: ~60 s (two processes and one, two tiny steps each). The first step gives rank 0 three clips
    that cannot be decoded and rank 1 three good ones: rank 0 runs a zero-weight stand-in instead of
    skipping its forward (which left rank 1 waiting in DDP's all-reduce), and rank 1's clips are weighed
    as the mean over the step's good clips, so the weights equal a one-process run of the same global batch."""
    from conftest import write_video

    root = tmp_path / "data"
    names = [f"v{i:02d}.mp4" for i in range(16)]
    order = EpochOrder(len(names), seed=0)
    order.place(0)
    broken = {names[i] for _, i in list(order)[:3]}  # the first per-process batch of epoch 1: rank 0's
    for i, name in enumerate(names):
        if name in broken:
            (root / name).write_text("not a video")
        else:
            write_video(root / name, seed=i)
    for i in range(4):
        write_video(root / f"t{i}.mp4", seed=100 + i)
    (root / "classes.txt").write_text("a\nb\n")
    (root / "train.txt").write_text("".join(f"{n} {'ab'[i % 2]}\n" for i, n in enumerate(names)))
    (root / "test.txt").write_text("".join(f"t{i}.mp4 {'ab'[i % 2]}\n" for i in range(4)))
    out = str(tmp_path / "two")
    _spawn(_undecodable_batch_worker, (2, _free_port(), str(root), out), seconds=360)
    a, b = load_file(f"{out}/rank0.safetensors"), load_file(f"{out}/rank1.safetensors")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ranks = [json.load(open(f"{out}/rank{r}.json")) for r in (0, 1)]
    assert sorted(line.split(": ")[0] for line in ranks[0]["bad"]) == sorted(str(root / n) for n in broken)
    record = json.loads(open(f"{ranks[0]['run_dir']}/metrics.jsonl").read().splitlines()[0])
    assert (record["clips"], record["skipped_clips"], record["bad_videos"]) == (2 * GLOBAL_BATCH - 3, 3, 3)
    single = Run("specs/baselines/clip-adapter.yaml", _options(str(root), str(tmp_path / "one"), dataset="list"),
                 console=Console(quiet=True))
    single.fit()
    alone = single.model.trainable_state()
    moved = [key for key in a if "up" in key and a[key].abs().sum() > 0]
    assert moved
    for key in a:
        assert torch.allclose(a[key], alone[key], rtol=1e-4, atol=1e-6), key
