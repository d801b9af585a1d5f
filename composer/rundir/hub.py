"""A run directory laid out for upload to a model hub (`composer card RUN_DIR --hub DIR`), without network access:
the model card as README.md (front matter with base_model, pipeline_tag, model-index), the final trained
weights as model.safetensors (the weights the card's results score; their metadata names the spec, its
digest and the model's fingerprint), the spec as it ran, the pictures the card shows, and config.json: what
a loader needs besides the tensors (classes, size, the backbones' weights, the input, where the files came
from). The folder is written whole or not at all (a temporary folder, then one rename)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from composer.errors import DataError
from composer.files import file_sha256
from composer.rundir.card import model_card
from composer.rundir.checkpoint import read_meta, weights_file
from composer.rundir.checkpoint_dir import WEIGHTS, latest_checkpoint
from composer.rundir.reading import read_run
from composer.spec.digest import spec_digest
from composer.spec.load import load_spec
from composer.version import composer_version

PICTURES = ("learning-curves.png", "confusion-*.png")


def hub_folder(run_dir: Path, out: Path) -> list[str]:
    """Lay `run_dir` out in `out` (which must not exist, or be empty); returns the names written."""
    run_dir, out = Path(run_dir), Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"--hub {out}: the folder exists and is not empty; give a new folder")
    run = read_run(run_dir)
    if run["summary"] is None or run["stale"]:
        raise DataError(f"{run_dir} has no test results of its latest weights (not finished, interrupted, or "
                        f"resumed past them): finish it (composer run --resume {run_dir}) before laying it out")
    record = run["record"]
    files: dict[str, Path | str] = {"README.md": model_card(run_dir), "spec.yaml": run_dir / "spec.yaml"}
    latest = latest_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
    if latest is not None:
        files["model.safetensors"] = weights_file(latest)  # its manifest and fingerprint verified
    for pattern in PICTURES:
        files.update({p.name: p for p in sorted(run_dir.glob(pattern))})
    files["config.json"] = json.dumps(_config(record, run_dir, latest), indent=1, ensure_ascii=False) + "\n"
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        for name, source in files.items():
            if isinstance(source, Path):
                shutil.copyfile(source, staging / name)
            else:
                (staging / name).write_text(source, encoding="utf-8")
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"--hub {out}: cannot write the folder ({e.strerror or e})") from None
    return list(files)


def _config(record: dict[str, Any], run_dir: Path, latest: Path | None) -> dict[str, Any]:
    spec = load_spec(str(run_dir / "spec.yaml"))
    video = spec.video_input()
    config = {"library_name": "composer", "composer_version": composer_version(), "spec": spec.name,
              "spec_digest": spec_digest(spec),
              # the class names, in the order of the scores (a checkpoint records them; a zero-shot run has none)
              "classes": read_meta(latest / WEIGHTS).get("classes") if latest is not None else None,
              "input": None if video is None else {"frames": video.frames, "size": video.size},
              "size": "tiny" if record["options"].get("tiny") else "full", "weights": record.get("weights"),
              "seed": record.get("seed"), "from_run": str(run_dir)}
    if latest is not None:
        config["model.safetensors"] = {"from": str((latest / WEIGHTS).relative_to(run_dir)),
                                       "sha256": file_sha256(latest / WEIGHTS)}
    else:
        config["model.safetensors"] = None  # nothing trained: the spec and its frozen backbones are the model
    return config
