"""Augmentation and test views on whole clips (the same crop, flip and colour change for every frame).

The work is split where it is cheapest. In the loader's worker processes, on uint8 frames: the geometry
(RandomResizedCrop and horizontal flip, with torchvision's v2 transforms; test views: resize the shorter
side, then the centre crop or three crops along the longer side). Clips cross the process boundary as
uint8, a quarter of the bytes of float32. On the training device, batched: the conversion to [0, 1] floats
and the photometric part of MSTA's recipe (ColorJitter(0.4, 0.4, 0.4, 0.1) with probability 0.8, then
greyscale with probability 0.2). Its random parameters are drawn in the worker from the clip's own
seeded generator (`draw_colour`) and travel with the clip, so a clip is coloured the same way on any
device and in any batch, and runs stay reproducible and resumable. Colour jitter costs ~70 ms per
224px 8-frame clip on a CPU core, which capped a 4-worker loader near 57 clips/s.

Flip is off for datasets whose classes are left/right (Something-Something and the demo).
Normalisation is not done here: each backbone normalises with its own statistics (CLIP's or ImageNet's)
inside the model, so one clip can feed two backbones.
"""

from __future__ import annotations

import random

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

JITTER = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
JITTER_P, GREY_P = 0.8, 0.2
GREY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale
# the layout of a clip's colour parameters (`draw_colour`)
BRIGHTNESS, CONTRAST, SATURATION, HUE, ORDER, JITTERED, GREY = 0, 1, 2, 3, slice(4, 8), 8, 9
COLOUR_FIELDS = 10


def train_geometry(size: int, flip: bool) -> v2.Compose:
    """The random crop (and flip) of a training clip, applied to uint8 frames in the worker."""
    steps = [v2.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    return v2.Compose(steps)


def crop(frames: torch.Tensor, transform: v2.Compose) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> uint8 [T, 3, S, S], one set of random parameters for the clip (torch's
    generator, which the caller seeds)."""
    return transform(tv_tensors.Video(frames)).as_subclass(torch.Tensor)


def draw_colour(rng: random.Random) -> torch.Tensor:
    """A clip's photometric parameters, [COLOUR_FIELDS] floats: the four jitter factors, the order the
    jitter applies them in, whether it is jittered at all, and whether it is turned grey."""
    b, c, s, h = JITTER
    factors = [rng.uniform(1 - b, 1 + b), rng.uniform(1 - c, 1 + c), rng.uniform(1 - s, 1 + s), rng.uniform(-h, h)]
    order = rng.sample(range(4), 4)
    jittered = rng.random() < JITTER_P
    grey = rng.random() < GREY_P
    return torch.tensor(factors + order + [float(jittered), float(grey)], dtype=torch.float32)


def to_unit(video: torch.Tensor) -> torch.Tensor:
    """uint8 clips -> float32 in [0, 1] (on whatever device they are)."""
    return video.float().div_(255.0)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] -> [..., 1, H, W] luma."""
    r, g, b = x.unbind(-3)
    return (r * GREY_WEIGHTS[0] + g * GREY_WEIGHTS[1] + b * GREY_WEIGHTS[2]).unsqueeze(-3)


def _brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * f).clamp_(0, 1)


def _contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = _grey(x).mean(dim=(-3, -2, -1), keepdim=True)  # per frame, as torchvision does for a video
    return (x * f + mean * (1 - f)).clamp_(0, 1)


def _saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * f + _grey(x) * (1 - f)).clamp_(0, 1)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue by `shift` turns; value and saturation (the max and min channel) are kept."""
    r, g, b = x.unbind(-3)
    high, low = x.amax(-3), x.amin(-3)
    delta = high - low
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(high == r, ((g - b) / safe) % 6, torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = (h / 6 + shift.squeeze(-3)) % 1.0
    channels = [high - delta * torch.clamp(torch.minimum(k, 4 - k), 0, 1)
                for k in ((n + h * 6) % 6 for n in (5, 3, 1))]
    return torch.stack(channels, dim=-3)


_OPS = (_brightness, _contrast, _saturation, _hue)


def colour(video: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Float clips [B, ..., 3, H, W] in [0, 1], coloured in place by their parameters [B, COLOUR_FIELDS]
    (`draw_colour`), batched on the clips' device. The masks are taken from `params` on the CPU, so nothing waits for the device."""
    params = params.cpu()
    shape = video.shape
    x = video.reshape(shape[0], -1, *shape[-3:])  # [B, frames, 3, H, W]
    jittered = params[:, JITTERED] > 0
    order = params[:, ORDER].long()
    for position in range(4):
        for op, fn in enumerate(_OPS):
            chosen = (jittered & (order[:, position] == op)).nonzero().flatten()
            if len(chosen):
                f = params[chosen, op].to(x.device).view(-1, 1, 1, 1, 1)
                x[chosen] = fn(x[chosen], f)
    grey = (params[:, GREY] > 0).nonzero().flatten()
    if len(grey):
        x[grey] = _grey(x[grey]).expand(-1, -1, 3, -1, -1).clone()
    return x.view(shape)


def test_views(frames: torch.Tensor, size: int, crops: int) -> list[torch.Tensor]:
    """uint8 [T, 3, H, W] -> `crops` uint8 views [T, 3, S, S]: the centre, or three along the longer side."""
    video = v2.functional.resize(frames, size, antialias=True)
    h, w = video.shape[-2:]
    if crops == 1:
        offsets = [((h - size) // 2, (w - size) // 2)]
    elif crops == 3:
        if w >= h:
            offsets = [((h - size) // 2, x) for x in (0, (w - size) // 2, w - size)]
        else:
            offsets = [(y, (w - size) // 2) for y in (0, (h - size) // 2, h - size)]
    else:
        raise ValueError("test views use 1 or 3 crops")
    return [video[..., y: y + size, x: x + size] for y, x in offsets]
