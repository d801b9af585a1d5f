"""Test setup: never touch the network (HF_HUB_OFFLINE=1), deterministic seeds, shared helpers."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted(p for p in (ROOT / "specs").rglob("*") if p.suffix in (".yaml", ".yml", ".comp"))

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tiny_model(spec, plan: bool = True, classes: int | None = None):
    from composer.compiler.compile import BuildOptions, compile_spec

    return compile_spec(spec, BuildOptions(device="cpu", tiny=True, plan=plan, num_classes=classes))


def tiny_batch(model, clips: int = 2, classes: int = 3) -> dict:
    """A random batch matching the spec's inputs (video in [0, 1])."""
    from composer.testing import random_batch

    return random_batch(model, clips, classes)


def class_names(count: int = 3) -> list[str]:
    return [f"action number {i}" for i in range(count)]


@pytest.fixture
def dataset_files(tmp_path) -> dict:
    """The per-class files a dataset provides (descriptions, Chinese labels, FTP answers) for class_names()."""
    import json

    names = class_names(8)
    files = {
        "descriptions": {n: {"spatial": [f"{n} seen from afar", f"the scene of {n}"],
                             "temporal": [f"{n} begins", f"{n} ends"]} for n in names},
        "chinese_labels": {n: f"动作{i}" for i, n in enumerate(names)},
        "ftp_answers": {n: {"category": n, "components": f"parts of {n}", "description": f"{n} in detail",
                            "context": f"where {n} happens"} for n in names},
    }
    out = {}
    for key, table in files.items():
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        out[key] = path
    return out


def write_video(path, frames: int = 8, size: int = 32, seed: int = 0) -> None:
    """A real mp4 (H.264 through torchcodec's encoder) of moving noise."""
    from torchcodec.encoders import VideoEncoder

    g = torch.Generator().manual_seed(seed)
    clip = (torch.rand(frames, 3, size, size, generator=g) * 255).to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    VideoEncoder(clip, frame_rate=8).to_file(str(path))


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """The demo set, generated once per test session into a temporary folder."""
    from composer.data.demo import demo_folder

    return demo_folder(tmp_path_factory.mktemp("demo") / "demo")
