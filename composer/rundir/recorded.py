"""What a checkpoint recorded about how it was made (classes, seed, size), settled against the options given.

`composer eval` and `composer predict` both go through here, so a result never depends on an option the
user has to remember: tiny backbones are regenerated from the checkpoint's seed, at the checkpoint's size,
and an option that contradicts the checkpoint is refused with both values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from composer.backbones.demo_weights import manifest_sha256
from composer.errors import DataError, SpecError
from composer.rundir.checkpoint import load_trainable, read_meta, weights_file


def checkpoint_meta(checkpoint: str | Path | None) -> dict[str, Any]:
    """The metadata a run stored in a checkpoint ({} without a checkpoint)."""
    if checkpoint is None:
        return {}
    path = weights_file(checkpoint)
    try:
        return read_meta(path)
    except Exception as e:  # not a safetensors file, or a truncated one
        raise DataError(f"{path} is not a readable composer checkpoint ({type(e).__name__})") from None


def settle(checkpoint: str | Path, option: str, given: Any, stored: Any) -> Any:
    """The checkpoint's value, unless an explicit option contradicts it (refused: the result would be wrong)."""
    if stored is None:
        return given
    if given is not None and given != stored:
        raise DataError(f"{checkpoint} was trained with --{option} {stored}, but --{option} {given} was given; "
                        f"leave --{option} out to use the checkpoint's")
    return stored


def load_checkpoint(model, checkpoint: str | Path, spec_path: str) -> Path:
    """Load a checkpoint's trainable weights into `model`; a checkpoint of another model is refused with the
    differences. Returns the weights file it read."""
    path = weights_file(checkpoint)
    try:
        load_trainable(model, path)
    except SpecError as e:
        problem = e.problems[0]
        detail = f": {problem.hint}" if problem.hint else ""
        if "different model" in problem.message:
            raise DataError(f"{checkpoint} was saved from a different model than {spec_path} builds{detail}; "
                            "give a checkpoint of a run of this spec, with the same --set options") from None
        raise DataError(problem.message + detail) from None
    return path


def weights_record(kind: str | None, tiny: bool) -> dict[str, str]:
    """What a run records about its backbone weights (run.json, every checkpoint's metadata): the kind
    ("demo", "random", or "spec": the spec's own) and, for demo weights, the hash of their manifest."""
    effective = kind or ("random" if tiny else "spec")
    if effective != "demo":
        return {"weights": effective}
    return {"weights": effective, "demo_manifest": manifest_sha256()}


def check_same_weights(where: str | Path, recorded: dict[str, str] | None, current: dict[str, str]) -> None:
    """A run, resumed or evaluated, meets the backbone weights it was trained on, or is refused."""
    if recorded is None or recorded == current:
        return
    if recorded.get("weights") == current.get("weights"):  # both demo, but not the same demo weights
        raise DataError(f"{where} was trained on other demo weights (manifest {recorded.get('demo_manifest')}) "
                        f"than this composer ships ({current.get('demo_manifest')}); use the composer that made it")
    raise DataError(f"{where} was trained with --weights {recorded.get('weights')}, but this run would use "
                    f"--weights {current.get('weights')}; leave --weights out to use the checkpoint's")


def settle_weights(checkpoint: str | Path, given: str | None, meta: dict[str, Any], tiny: bool) -> str | None:
    """The --weights a checkpoint was trained with (a contradicting one is refused), as RunOptions.weights.
    Checkpoints from before --weights existed ran the default: random at tiny size, the spec's at full."""
    if not meta:
        return given
    stored = meta.get("weights") or ("random" if meta.get("size") == "tiny" else "spec")
    settled = settle(checkpoint, "weights", given, stored)
    check_same_weights(checkpoint, {k: meta[k] for k in ("weights", "demo_manifest") if k in meta} or None,
                       weights_record(None if settled == "spec" else settled, tiny))
    return None if settled == "spec" else settled
