"""Caching frozen features on disk across epochs (`composer run --cache-features DIR`).

When every tower a clip goes through is frozen with nothing trainable in it (a linear probe, late
fusion), its outputs for a clip never change, so they are computed once, stored per clip as
safetensors, and later epochs read them instead of decoding videos and running backbones. The cached
clips are un-augmented (the test-time view), which is what makes the features reusable; this trades
augmentation for speed, so it is an explicit option.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from composer.compiler.fingerprint import fingerprint, identity
from composer.data.clips import ClipConfig, ClipDataset
from composer.data.transforms import to_unit
from composer.errors import DataError
from composer.files import atomic_write
from composer.spec.ir import VideoInput


def frozen_video_runs(model) -> list[str]:
    """Tower runs over the video that need no gradient: the only consumers of the video, or nothing."""
    videos = {n for n, i in model.spec.inputs.items() if isinstance(i, VideoInput)}
    runs = [r for r in model.graph.runs.values() if r.inputs[0] in videos]
    consumers = [reader for v in videos for reader in model.graph.readers(v)]
    frozen = [r.id for r in runs if model.plan.grad_from[r.id] is None]
    if not frozen or len(frozen) != len(consumers):
        raise DataError("--cache-features needs a spec whose video goes only through frozen towers with nothing "
                        "trainable in them (a linear probe, late fusion)")
    return frozen


def cache_key(model, items, config: ClipConfig, runs: list[str], precision: str) -> dict:
    """What the cached features depend on: the backbones (their structure and a sample of every frozen weight,
    so tiny backbones of another seed differ), the towers cached, the clips and how they are sampled, and
    the precision they were computed in."""
    weights = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if not p.requires_grad:
            flat = p.detach().flatten()
            weights.update(name.encode() + flat[:: max(1, flat.numel() // 64)].float().cpu().numpy().tobytes())
    clips = hashlib.sha256("".join(f"{i.path}\t{i.label}\n" for i in items).encode()).hexdigest()
    return {"model": fingerprint(model), "weights": weights.hexdigest()[:16], "towers": runs,
            "clips": clips[:16], "sampling": [config.frames, config.size, config.window], "precision": precision}


def cached_tensors(model, run_ids: list[str]) -> list[str]:
    names = []
    for run_id in run_ids:
        run = model.graph.runs[run_id]
        names += list(run.outputs) + run.taps
    return names


class CachedClips(Dataset):
    """Clips as their frozen features: computed on first use, read from `folder` afterwards."""

    collate = staticmethod(lambda samples: collate_features(samples))

    def __init__(self, model, items, config: ClipConfig, folder: Path, device: str, precision: str) -> None:
        self.model, self.items, self.folder, self.device = model, items, Path(folder), device
        self.identity = identity(model)  # in every cached file's metadata
        self.clips = ClipDataset(items, ClipConfig(config.frames, config.size, config.window, flip=False,
                                                   device=config.device), train=False)
        self.runs = frozen_video_runs(model)
        self.names = cached_tensors(model, self.runs)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._claim(cache_key(model, items, config, self.runs, precision))

    def _claim(self, key: dict) -> None:
        """Files are named by clip index, so a folder filled for another model, other clips or another
        precision would be read as if it were this one's: cache.json records what filled it, and a
        different record is refused."""
        record = self.folder / "cache.json"
        if record.exists():
            found = json.loads(record.read_text(encoding="utf-8"))
            if found != key:
                differ = ", ".join(k for k in key if found.get(k) != key[k])
                raise DataError(f"--cache-features {self.folder} holds features of another run (its {differ} "
                                "differ); give an empty folder, or the one this spec and dataset filled")
            return
        if any(self.folder.glob("*.safetensors")):
            raise DataError(f"--cache-features {self.folder} holds feature files without a cache.json record of "
                            "what made them; give an empty folder")
        atomic_write(record, lambda tmp: Path(tmp).write_text(json.dumps(key, indent=1), encoding="utf-8"))

    def __len__(self) -> int:
        return len(self.items)

    def path(self, i: int) -> Path:
        return self.folder / f"{i:08d}.safetensors"

    @torch.no_grad()
    def fill(self, progress=None, task=None) -> list[str]:
        """Compute what is not cached yet; return the videos that could not be decoded."""
        bad = []
        for i in range(len(self.items)):
            if progress is not None:
                progress.update(task, completed=i + 1, total=len(self.items))
            if self.path(i).exists():
                continue
            sample = self.clips[i]
            if "bad" in sample:
                bad.append(sample["bad"])
                continue
            values = {name: to_unit(sample["video"][:1].to(self.device)) for name in self.model.spec.inputs
                      if isinstance(self.model.spec.inputs[name], VideoInput)}
            for run_id in self.runs:
                values.update(self.model.run_tower(run_id, values))
            tensors = {n: values[n][0].to("cpu").contiguous() for n in self.names}
            atomic_write(self.path(i), lambda tmp: save_file(tensors, tmp, metadata=self.identity))
        return bad

    def placeholder(self) -> dict:
        """Zero features of the cached shapes: what a process whose whole batch has no cached features runs, with
        zero weight, so that it still takes part in the step's collectives (composer/train/loop.py)."""
        first = next((self.path(i) for i in range(len(self.items)) if self.path(i).exists()), None)
        if first is None:
            raise DataError(f"--cache-features {self.folder} holds no features on this process: every process "
                            "must see the folder the main process filled")
        return {"features": {k: torch.zeros_like(v) for k, v in load_file(first).items()}, "label": 0, "index": -1}

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """`key`: a clip index, or (epoch, index) as the training sampler gives it (cached clips are the same
        every epoch: no augmentation)."""
        i = key[1] if isinstance(key, tuple) else key
        if not self.path(i).exists():
            return {"bad": f"{self.items[i].path}: not decodable (no cached features)", "index": i}
        return {"features": load_file(self.path(i)), "label": self.items[i].label, "index": i}


def collate_features(samples: list[dict]) -> dict:
    good = [s for s in samples if "bad" not in s]
    batch: dict = {"bad": [s["bad"] for s in samples if "bad" in s]}
    if good:
        batch["features"] = {k: torch.stack([s["features"][k] for s in good]) for k in good[0]["features"]}
        batch["label"] = torch.tensor([s["label"] for s in good])
        batch["index"] = torch.tensor([s["index"] for s in good])
    return batch


def cache_features(accelerator, model, items, config: ClipConfig, folder: Path, device: str, precision: str,
                   bars) -> tuple[CachedClips, list[str]]:
    """The training clips' frozen features in `folder`: the main process computes what is missing (in the
    run's precision, as training would compute them), the others then read. Returns the dataset and the videos
    that could not be decoded."""
    cached = CachedClips(model, items, config, folder, device, precision)
    with accelerator.main_process_first():
        task = bars.add_task("caching frozen features", total=len(cached), loss="-", speed="-")
        with accelerator.autocast():
            bad = cached.fill(bars, task)
    return cached, bad
