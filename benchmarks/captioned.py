"""Captioned synthetic motion clips, generated in memory, for pretraining the tiny demo backbones.

The demo set (demo.py) is the *downstream* task; this is a different distribution on purpose, so that
what a demo-weights backbone does on the demo is transfer, not memory:

- shapes the demo never draws (star, cross, ring with a gap, diamond, hexagon; no triangle, square or
  circle), colours from a named palette, backgrounds the demo never uses (checkerboards, noise,
  gradients, plain), 8 frames at 64 px;
- motions: slides in eight directions (the four diagonals too) at several speeds, turns either way,
  grows (comes closer) or shrinks (goes away), and stays still;
- captions in varied English templates and in Chinese that never contain a demo class name as a
  substring (`CLASS_NAMES` in demo.py; e.g. no "approaching", which contains "approach").

A curriculum (`batch(easy=...)`): a share of the scenes can be drawn as a white shape on black. The
tiny towers, trained from scratch, stay at chance on motion for hundreds of steps on the full
distribution (position is a relation between a patch and its background there); on the easy scenes
they pick it up within about 150 steps and keep it as the share falls (docs/demo-weights.md).

A clip played backwards is the opposite motion, so `batch` shows each clip forwards or reversed and
captions it accordingly: the only thing telling the two apart is the order of the frames.
The drawing follows demo.py's conventions (the motion parameter s runs over [-0.5, 0.5] across the
clip, the shape's colour contrasts with the background's brightness as there) with its own shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from composer.data.demo import CHINESE, CLASSES

SIZE, FRAMES = 64, 8
SHAPES = ("star", "cross", "ring", "diamond", "hexagon")
SHAPES_ZH = {"star": "星形", "cross": "十字", "ring": "圆环", "diamond": "菱形", "hexagon": "六边形"}
COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.15, 0.8, 0.2), "blue": (0.15, 0.3, 0.95), "yellow": (0.95, 0.9, 0.1),
           "purple": (0.6, 0.2, 0.8), "orange": (1.0, 0.55, 0.05), "white": (0.97, 0.97, 0.97),
           "black": (0.05, 0.05, 0.05)}
COLOURS_ZH = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "purple": "紫色", "orange": "橙色",
              "white": "白色", "black": "黑色"}
BACKGROUNDS = {"checker": "a checkered floor", "noise": "a noisy background", "gradient": "a colour gradient",
               "plain": "a plain background", "black": "a black background"}
BACKGROUNDS_ZH = {"checker": "棋盘格", "noise": "噪点背景", "gradient": "渐变背景", "plain": "纯色背景",
                  "black": "黑色背景"}
# the easy scene of the curriculum (`batch(easy=...)`): a white shape on black, nothing else to look at;
# black is drawn only there
EASY_BACKGROUND, EASY_COLOUR = "black", "white"
DRAWN_BACKGROUNDS = [kind for kind in BACKGROUNDS if kind != EASY_BACKGROUND]
# direction name -> unit step (x right, y down); the reverse of each is in the table too
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "up and to the left": (-1, -1),
              "up and to the right": (1, -1), "down and to the left": (-1, 1), "down and to the right": (1, 1)}
DIRECTIONS_ZH = {"left": "向左", "right": "向右", "up": "向上", "down": "向下", "up and to the left": "向左上",
                 "up and to the right": "向右上", "down and to the left": "向左下", "down and to the right": "向右下"}
# motion -> the motion its reversal shows
MOTIONS = {**{f"slide {d}": f"slide {n}" for d, n in zip(DIRECTIONS, ["right", "left", "down", "up",
                                                                       "down and to the right",
                                                                       "down and to the left",
                                                                       "up and to the right",
                                                                       "up and to the left"])},
           "turn clockwise": "turn anticlockwise", "turn anticlockwise": "turn clockwise",
           "grow": "shrink", "shrink": "grow", "stay": "stay"}


@dataclass(frozen=True)
class Scene:
    """Everything a clip's pixels and caption depend on."""

    shape: str
    colour: str
    background: str
    motion: str  # a key of MOTIONS, as played forwards
    speed: float  # 0..1: slow .. fast
    cx: float
    cy: float
    radius: float
    angle: float
    seed: int  # the background's texture


def _grid() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.arange(SIZE, dtype=torch.float), torch.arange(SIZE, dtype=torch.float), indexing="ij")


def shape_mask(kind: str, cx: torch.Tensor, cy: torch.Tensor, radius: torch.Tensor,
               angle: torch.Tensor) -> torch.Tensor:
    """[T, S, S] bool masks of a filled shape, one per frame (cx, cy, radius, angle: [T] each). Every
    shape shows its rotation: the ring has a gap, the cross and the diamond are longer one way, the
    hexagon has one longer corner."""
    y, x = _grid()
    cx, cy, radius, angle = (v.view(-1, 1, 1) for v in (cx, cy, radius, angle))
    dx, dy = x - cx, y - cy
    r = (dx ** 2 + dy ** 2).sqrt()
    phi = torch.atan2(dy, dx) - angle
    u = dx * torch.cos(angle) + dy * torch.sin(angle)  # coordinates along and across the shape's axis
    v = -dx * torch.sin(angle) + dy * torch.cos(angle)
    if kind == "star":  # five points: the boundary radius swings between 0.45 r and 1.15 r
        return r <= radius * (0.8 + 0.35 * torch.cos(5 * phi))
    if kind == "ring":  # an annulus with a wedge cut out at `angle`
        return (r <= radius) & (r >= 0.55 * radius) & ~(torch.cos(phi) > 0.85)
    if kind == "cross":  # two bars, one longer than the other so a quarter turn shows
        return ((u.abs() <= 1.2 * radius) & (v.abs() <= 0.3 * radius)) | \
            ((v.abs() <= 0.8 * radius) & (u.abs() <= 0.3 * radius))
    if kind == "diamond":  # a rhombus twice as long as wide
        return u.abs() / (1.3 * radius) + v.abs() / (0.65 * radius) <= 1
    if kind == "hexagon":  # a regular hexagon, with one marked (longer) corner
        sector = (phi / (math.pi / 3)).round() * (math.pi / 3)
        return (r * torch.cos(phi - sector) <= radius * math.cos(math.pi / 6)) | \
            ((r <= 1.3 * radius) & (torch.cos(phi) > 0.97))
    raise ValueError(f"unknown shape '{kind}'")


def background(kind: str, g: torch.Generator) -> torch.Tensor:
    """[3, S, S] in [0, 1]: none of these is the demo's smooth striped colour field."""
    if kind == EASY_BACKGROUND:
        return torch.zeros(3, SIZE, SIZE)
    y, x = _grid()
    base, other = torch.rand(3, generator=g), torch.rand(3, generator=g)
    if kind == "checker":
        cell = int(torch.randint(4, 13, (1,), generator=g))
        board = ((x // cell + y // cell) % 2)[None]
        return base[:, None, None] * (1 - board) + other[:, None, None] * board
    if kind == "noise":
        return (base[:, None, None] * 0.6 + 0.4 * torch.rand(3, SIZE, SIZE, generator=g)).clamp(0, 1)
    if kind == "gradient":
        a = torch.rand(1, generator=g).item() * 2 * math.pi
        ramp = ((x * math.cos(a) + y * math.sin(a)) / (SIZE * 1.42) + 0.5).clamp(0, 1)[None]
        return base[:, None, None] * (1 - ramp) + other[:, None, None] * ramp
    return base[:, None, None].expand(3, SIZE, SIZE).clone()


def sample_scene(g: torch.Generator, easy: float = 0.0) -> Scene:
    """A random scene; with probability `easy`, the curriculum's easy one (a white shape on black)."""
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=g))]  # noqa: E731
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(1, generator=g).item()  # noqa: E731
    scene = Scene(shape=pick(SHAPES), colour=pick(list(COLOURS)), background=pick(DRAWN_BACKGROUNDS),
                  motion=pick(list(MOTIONS)), speed=u(0, 1), cx=u(26, 38), cy=u(26, 38), radius=u(8, 12),
                  angle=u(0, 2 * math.pi), seed=int(torch.randint(2 ** 31, (1,), generator=g)))
    if easy > 0 and torch.rand(1, generator=g).item() < easy:
        scene = replace(scene, background=EASY_BACKGROUND, colour=EASY_COLOUR)
    return scene


def render(scene: Scene) -> torch.Tensor:
    """The clip of `scene` played forwards: float [T, 3, S, S] in [0, 1]."""
    g = torch.Generator().manual_seed(scene.seed)
    field = background(scene.background, g)
    colour = torch.tensor(COLOURS[scene.colour])
    if (colour - field.mean((1, 2))).abs().mean() < 0.25:  # keep the shape visible: darken or lighten it
        colour = colour * 0.3 if field.mean() > 0.5 else 0.7 + colour * 0.3
    travel, spin, grow = 18 + 22 * scene.speed, 1.8 + 1.7 * scene.speed, 1.8 + 1.2 * scene.speed
    s = torch.arange(FRAMES, dtype=torch.float) / (FRAMES - 1) - 0.5
    x, y = torch.full_like(s, scene.cx), torch.full_like(s, scene.cy)
    r, a = torch.full_like(s, scene.radius), torch.full_like(s, scene.angle)
    m = scene.motion
    if m.startswith("slide "):
        dx, dy = DIRECTIONS[m[len("slide "):]]
        norm = math.hypot(dx, dy)
        x, y = x + travel * s * dx / norm, y + travel * s * dy / norm
    elif m == "turn clockwise":  # y points down, so a growing angle turns clockwise on screen
        a = a + spin * s
    elif m == "turn anticlockwise":
        a = a - spin * s
    elif m in ("grow", "shrink"):
        r = r * grow ** (s if m == "grow" else -s)
    mask = shape_mask(scene.shape, x, y, r, a)[:, None]  # [T, 1, S, S]
    return torch.where(mask, colour[None, :, None, None], field[None])


def _speed_word(speed: float) -> str:
    return "slowly" if speed < 0.33 else ("quickly" if speed > 0.67 else "steadily")


def _motion_phrase(motion: str, speed: float, g: torch.Generator) -> str:
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=g))]  # noqa: E731
    if motion.startswith("slide "):
        where = motion[len("slide "):]
        verb = pick(["slides", "drifts", "glides", "travels", "goes", "moves"])
        options = [f"{verb} {where}", f"{verb} {_speed_word(speed)} {where}"]
        return pick(options + [f"{verb} to the {where}"] if where in ("left", "right") else options)
    if motion.startswith("turn "):
        way = motion[len("turn "):]
        way = pick([way, "counterclockwise"]) if way == "anticlockwise" else way
        return pick([f"turns {way}", f"spins {way}", f"rotates {way}",
                     f"{pick(['turns', 'spins', 'rotates'])} {_speed_word(speed)} {way}"])
    if motion == "grow":
        return pick(["grows as it comes closer", "gets bigger", "comes closer", "grows larger",
                     "comes nearer to the camera"])
    if motion == "shrink":
        return pick(["shrinks as it goes away", "gets smaller", "goes away", "shrinks",
                     "goes farther from the camera"])
    return pick(["stays still", "does not move", "stays where it is"])


def caption(scene: Scene, motion: str, g: torch.Generator) -> str:
    """An English caption of `scene` showing `motion` (forwards or reversed), in one of several templates."""
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=g))]  # noqa: E731
    what = pick([f"a {scene.colour} {scene.shape}", f"the {scene.shape}", f"a {scene.shape}", "a shape",
                 f"the {scene.colour} shape"])
    phrase = _motion_phrase(motion, scene.speed, g)
    if motion.startswith(("slide ", "turn ")) and int(torch.randint(4, (1,), generator=g)) == 0:
        # the verbs' base form, always with a speed word before the direction: "move slowly left", never
        # a demo class name ("move left")
        verb, way = ("move", motion[len("slide "):]) if motion.startswith("slide ") else ("rotate", motion[5:])
        return f"Watch {what} {verb} {_speed_word(scene.speed)} {way}."
    where = BACKGROUNDS[scene.background]
    text = pick([f"{what} {phrase}", f"{what} {phrase} over {where}", f"a video of {what} that {phrase}",
                 f"on {where}, {what} {phrase}"])
    return text[0].upper() + text[1:] + "."


def caption_zh(scene: Scene, motion: str, g: torch.Generator) -> str:
    """A Chinese caption (no punctuation: the tiny tower's vocabulary holds ASCII and CJK ideographs only)."""
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=g))]  # noqa: E731
    what = pick([f"一个{COLOURS_ZH[scene.colour]}的{SHAPES_ZH[scene.shape]}", f"{SHAPES_ZH[scene.shape]}", "一个图形"])
    if motion.startswith("slide "):
        phrase = DIRECTIONS_ZH[motion[len("slide "):]] + pick(["滑动", "平移", "漂移"])
    elif motion == "turn clockwise":
        phrase = pick(["顺时针转动", "顺时针打转"])
    elif motion == "turn anticlockwise":
        phrase = pick(["逆时针转动", "逆时针打转"])
    elif motion == "grow":
        phrase = pick(["越来越大", "变大并且越来越近"])
    elif motion == "shrink":
        phrase = pick(["越来越小", "变小并且越来越远"])
    else:
        phrase = pick(["静止不动", "停在原地"])
    return pick([f"{what}{phrase}", f"在{BACKGROUNDS_ZH[scene.background]}上{what}{phrase}", f"视频里{what}{phrase}"])


@dataclass
class Batch:
    video: torch.Tensor  # float [B, T, 3, S, S] in [0, 1]
    captions: list[str]
    captions_zh: list[str]
    motions: list[str]  # the motion each clip shows (after reversal)
    reversed: list[bool]
    shapes: list[str]
    colours: list[str]


def _partner(scene: Scene, kind: str, g: torch.Generator) -> tuple[Scene, bool]:
    """The second clip of a pair: `reverse` plays the same clip backwards (an order-blind model cannot tell
    the two apart), `motion` shows the same scene with another kind of motion (slide, turn, grow/shrink)."""
    if kind == "reverse":
        return scene, True
    kinds = {"slide": [m for m in MOTIONS if m.startswith("slide ")], "turn": ["turn clockwise", "turn anticlockwise"],
             "size": ["grow", "shrink"]}
    own = next((k for k, ms in kinds.items() if scene.motion in ms), "stay")
    others = [m for k, ms in kinds.items() if k != own for m in ms]
    return replace(scene, motion=others[int(torch.randint(len(others), (1,), generator=g))]), False


def batch(size: int, g: torch.Generator, frames: int = FRAMES, pairs: str | None = None, easy: float = 0.0) -> Batch:
    """`size` fresh clips, each shown forwards or reversed (half and half in expectation), captioned.
    `frames` below FRAMES keeps evenly spaced frames (the first and the last among them). `pairs`
    ("reverse" or "motion") makes clips come in pairs of one scene that differ only in their motion, so
    a contrastive batch cannot be solved by colour, shape and background alone. `easy` is the share of
    scenes drawn as the curriculum's easy scene (a white shape on black)."""
    clips, en, zh, motions, flipped, shapes, colours = [], [], [], [], [], [], []
    keep = torch.linspace(0, FRAMES - 1, frames).round().long()

    def add(scene: Scene, reverse: bool) -> None:
        clip = render(scene)[keep]
        motion = MOTIONS[scene.motion] if reverse else scene.motion
        clips.append(clip.flip(0) if reverse else clip)
        en.append(caption(scene, motion, g))
        zh.append(caption_zh(scene, motion, g))
        motions.append(motion)
        flipped.append(reverse)
        shapes.append(scene.shape)
        colours.append(scene.colour)

    while len(clips) < size:
        scene = sample_scene(g, easy)
        if pairs == "reverse" and scene.motion == "stay":  # a still clip is its own reversal
            continue
        reverse = bool(torch.randint(2, (1,), generator=g))
        add(scene, reverse)
        if pairs is not None and len(clips) < size:
            other, flip = _partner(scene, pairs, g)
            add(other, reverse != flip)
    return Batch(torch.stack(clips), en, zh, motions, flipped, shapes, colours)


def forbidden(text: str) -> list[str]:
    """The demo class names (English or Chinese) that occur in `text`, as substrings, case-insensitive."""
    low = text.lower()
    return [name for name in CLASSES if name in low] + [zh for zh in CHINESE.values() if zh in text]
