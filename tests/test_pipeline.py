"""The input pipeline: colour augmentation batched on the device matches torchvision clip by clip, clips stay
uint8 until the device, a stage's loader keeps its workers across epochs and still seeds every clip by
(seed, epoch, clip), and evaluation forwards at most --eval-batch-size views at once."""

import random

import pytest
import torch
from accelerate import Accelerator
from torch import nn
from torchvision.transforms.v2 import functional as F

from composer.data.clips import ClipConfig, ClipDataset, on_device
from composer.data.datasets import Item
from composer.data.protocols import Part
from composer.data.transforms import BRIGHTNESS, CONTRAST, GREY, HUE, JITTERED, ORDER, SATURATION, colour, draw_colour
from composer.spec.ir import VideoInput
from composer.train.evaluator import evaluate
from composer.train.loop import Settings, TrainLoader, eval_loader
from tests.conftest import write_video


def _reference(clip: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """torchvision's own colour functions, one clip at a time, in the clip's order."""
    ops = {BRIGHTNESS: F.adjust_brightness, CONTRAST: F.adjust_contrast, SATURATION: F.adjust_saturation,
           HUE: F.adjust_hue}
    if p[JITTERED]:
        for op in p[ORDER].long().tolist():
            clip = ops[op](clip, float(p[op]))
    if p[GREY]:
        clip = F.rgb_to_grayscale(clip, num_output_channels=3)
    return clip


def test_batched_colour_matches_torchvision_clip_by_clip():
    g = torch.Generator().manual_seed(0)
    video = torch.rand(24, 2, 3, 3, 12, 12, generator=g)  # [B, T, W, 3, H, W]: windows too
    rng = random.Random(1)
    params = torch.stack([draw_colour(rng) for _ in range(24)])
    assert params[:, JITTERED].any() and not params[:, JITTERED].all() and params[:, GREY].any()
    out = colour(video.clone(), params)
    for b in range(24):
        expected = _reference(video[b].flatten(0, 1), params[b]).view(video[b].shape)
        torch.testing.assert_close(out[b], expected, atol=2e-5, rtol=0)
    untouched = ~(params[:, JITTERED] > 0) & ~(params[:, GREY] > 0)
    assert torch.equal(out[untouched], video[untouched])


def test_a_clip_is_coloured_the_same_alone_or_in_a_batch():
    video = torch.rand(5, 4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    params = torch.stack([draw_colour(random.Random(f"7/0/{i}")) for i in range(5)])
    batch = colour(video.clone(), params)
    for i in range(5):
        torch.testing.assert_close(colour(video[i:i + 1].clone(), params[i:i + 1])[0], batch[i], atol=0, rtol=0)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Item]:
    folder = tmp_path_factory.mktemp("clips")
    items = []
    for i in range(6):
        write_video(folder / f"{i}.mp4", frames=12, size=24, seed=i)
        items.append(Item(folder / f"{i}.mp4", i % 2))
    (folder / "bad.mp4").write_text("not a video")
    return items + [Item(folder / "bad.mp4", 0)]


def _epochs(items, workers: int, epochs: int = 2, start_epoch: int = 0, start_batch: int = 0):
    dataset = ClipDataset(items, ClipConfig(frames=4, size=16), train=True, seed=5)
    loader = TrainLoader(dataset, Settings(batch_size=3, workers=workers), Accelerator(cpu=True), seed=5)
    out, pids = [], []
    for epoch in range(start_epoch, start_epoch + epochs):
        batches = list(loader.epoch(epoch, start_batch if epoch == start_epoch else 0))
        out.append(batches)
        if workers:
            pids.append(sorted(w.pid for w in loader.data._iterator._workers))
    return out, pids


def test_persistent_workers_keep_their_processes_and_the_seeded_clips(videos):
    inline, _ = _epochs(videos, workers=0)
    pooled, pids = _epochs(videos, workers=2)
    assert len(pids) == 2 and pids[0] == pids[1]  # the same worker processes served both epochs
    for a_epoch, b_epoch in zip(inline, pooled):
        for a, b in zip(a_epoch, b_epoch):
            assert a["video"].dtype == torch.uint8 and a["bad"] == b["bad"]
            for key in ("video", "colour", "label", "index"):
                assert torch.equal(a[key], b[key]), key
    assert sum(len(b["bad"]) for b in pooled[0]) == 1  # the undecodable file is reported, not fatal
    first = torch.cat([b["index"] for b in inline[0]])
    second = torch.cat([b["index"] for b in inline[1]])
    assert not torch.equal(first, second)  # each epoch has its own order
    resumed, _ = _epochs(videos, workers=2, epochs=1, start_epoch=1, start_batch=1)  # epoch 2 from its 2nd batch
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(inline[1][1:], resumed[0]))
    assert len(resumed[0]) == len(inline[1]) - 1


def test_on_device_turns_uint8_into_unit_floats_and_colours_training_clips():
    video = torch.randint(0, 256, (2, 4, 3, 8, 8), dtype=torch.uint8)
    plain = on_device({"video": video}, "cpu")
    assert plain.dtype == torch.float32 and torch.equal(plain, video.float() / 255)
    params = torch.stack([draw_colour(random.Random(i)) for i in (0, 1)])
    params[:, JITTERED], params[:, GREY] = 1.0, 0.0
    assert not torch.equal(on_device({"video": video, "colour": params}, "cpu"), plain)


class _Counting(nn.Module):
    """Scores clips by their mean brightness; records how many clips each forward took, and whether autograd
    was recording (a trainable scale, so evaluating with it on would keep a graph)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.recorded: list[bool] = []
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, given: dict, outputs: list[str]) -> dict:
        video = given["video"]
        self.sizes.append(len(video))
        self.recorded.append(torch.is_grad_enabled())
        m = video.mean(dim=(1, 2, 3, 4))
        return {"logits": torch.stack([m, 1 - m], dim=-1) * self.scale}


class _Spec:
    inputs = {"video": VideoInput(kind="video", frames=4, size=16)}


def test_evaluation_forwards_at_most_the_eval_batch_size_in_views(videos):
    good = videos[:6]
    config = ClipConfig(frames=4, size=16, clips=2, crops=3)  # 6 views per clip
    part = Part(good, ["dark", "bright"])
    accelerator = Accelerator(cpu=True)
    scores = {}
    for eval_batch in (4, 64):
        settings = Settings(batch_size=8, workers=0, eval_batch_size=eval_batch)
        net = _Counting()
        data = eval_loader(ClipDataset(good, config, False), settings, accelerator, views=6)
        metrics = evaluate(accelerator, net, _Spec(), "logits", part, data, settings)
        assert max(net.sizes) <= eval_batch and sum(net.sizes) == 6 * len(good)
        assert not any(net.recorded) and not metrics["scores"].requires_grad  # evaluation keeps no graph
        scores[eval_batch] = metrics["scores"]
    torch.testing.assert_close(scores[4], scores[64])  # chunking changes nothing but the peak


def test_colour_in_the_worker_gives_the_clips_the_device_would(videos):
    config = ClipConfig(frames=4, size=16)
    on_device_clips = ClipDataset(videos[:3], config, train=True, seed=1)
    in_worker = ClipDataset(videos[:3], ClipConfig(frames=4, size=16, colour_in_worker=True), train=True, seed=1)
    for i in range(3):
        a, b = on_device_clips[(2, i)], in_worker[(2, i)]
        assert b["video"].dtype == torch.float32 and "colour" not in b
        torch.testing.assert_close(on_device({"video": a["video"][None], "colour": a["colour"][None]}, "cpu")[0],
                                   b["video"], atol=0, rtol=0)
