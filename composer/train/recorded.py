"""What a checkpoint recorded about how it was made (classes, seed, size), settled against the options given.

`composer eval` and `composer predict` both go through here, so a result never depends on an option the
user has to remember: tiny backbones are regenerated from the checkpoint's seed, at the checkpoint's size,
and an option that contradicts the checkpoint is refused with both values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from composer.build.checkpoint import load_trainable, read_meta, weights_file
from composer.errors import DataError, SpecError


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
