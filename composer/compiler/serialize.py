"""Write an inference module (composer/compiler/inference.py) in one of three formats, and run the file back.

Each format is a record: the file it writes, how it writes it and how the written file is run again
(onnxruntime for ONNX, torch.jit.load, torch.export.load), so `composer export` measures the file it hands
over, not the module it came from. The batch dimension stays dynamic in every format (the sample has two
clips: torch specialises a dimension of size 1).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from composer.errors import DataError

ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_ONNX = "pip install 'composer-video[export]'  (or: pip install onnx onnxscript onnxruntime)"


@dataclass(frozen=True)
class Format:
    name: str
    file: str
    save: Callable[[nn.Module, torch.Tensor, Path], dict]  # (module, sample, path) -> what to record about it
    run: Callable[[Path, torch.Tensor], torch.Tensor]  # (path, clips) -> scores, from the file alone
    packages: tuple[str, ...] = ()  # what it needs beyond torch


def _batch_dim() -> dict:
    return {0: torch.export.Dim("batch", min=1)}


def _save_onnx(module: nn.Module, sample: torch.Tensor, path: Path) -> dict:
    program = torch.onnx.export(module, (sample,), dynamic_shapes=(_batch_dim(),), input_names=["video"],
                                output_names=["scores"], dynamo=True, verbose=False)
    program.save(str(path))
    import onnx  # lazy: onnx/onnxruntime only for an ONNX export

    opset = next((o.version for o in onnx.load(str(path), load_external_data=False).opset_import
                  if o.domain in ("", "ai.onnx")), None)
    return {"opset": opset}


def _run_onnx(path: Path, clips: torch.Tensor) -> torch.Tensor:
    import onnxruntime  # lazy: onnx/onnxruntime only for an ONNX export

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: clips.numpy()})[0])


def _save_torchscript(module: nn.Module, sample: torch.Tensor, path: Path) -> dict:
    with warnings.catch_warnings():  # torch 2.14 calls TorchScript deprecated; it is still what many runtimes load
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning)
        traced = torch.jit.trace(module, (sample,), check_trace=False)
    traced.save(str(path))
    return {}


def _run_torchscript(path: Path, clips: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..* is deprecated", category=FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")(clips)


def _save_exported_program(module: nn.Module, sample: torch.Tensor, path: Path) -> dict:
    program = torch.export.export(module, (sample,), dynamic_shapes=(_batch_dim(),))
    torch.export.save(program, str(path))
    return {}


def _run_exported_program(path: Path, clips: torch.Tensor) -> torch.Tensor:
    return torch.export.load(str(path)).module()(clips)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", "model.onnx", _save_onnx, _run_onnx, ONNX_PACKAGES),
    Format("torchscript", "model.pt", _save_torchscript, _run_torchscript),
    Format("exported-program", "model.pt2", _save_exported_program, _run_exported_program),
)}


def require(fmt: Format) -> None:
    """Refuse a format whose packages are not installed, with the line that installs them."""
    missing = [p for p in fmt.packages if importlib.util.find_spec(p) is None]
    if missing:
        raise DataError(f"--format {fmt.name} needs {', '.join(missing)}, which is not installed: {INSTALL_ONNX}")


def versions(fmt: Format) -> dict[str, str]:
    """The versions of torch and of the format's packages, for export.json."""
    return {p: importlib.metadata.version(p) for p in ("torch", *fmt.packages)}


def write(fmt: Format, module: nn.Module, sample: torch.Tensor, path: Path) -> dict:
    """Write `module` to `path` in `fmt` (traced on `sample`, no autograd); returns what to record."""
    with torch.no_grad():
        return fmt.save(module, sample, path)


def run_file(fmt: Format, path: Path, clips: torch.Tensor) -> torch.Tensor:
    """The scores the written file gives `clips`."""
    with torch.no_grad():
        return fmt.run(path, clips).float()
