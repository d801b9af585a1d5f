"""Pretrain the tiny backbones on captioned synthetic motion (benchmarks/captioned.py): the demo weights.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/pretrain_demo.py            # all five families, committed files
    .venv/bin/python benchmarks/pretrain_demo.py --out /tmp/w --steps 2 --batch 4   # a smoke run

Each family's tiny configuration is built by its own builder (Request(tiny=True)) and trained through
the same towers `composer run` uses, then saved in the layout that family's local-file loader reads
(docs/demo-weights.md):

- clip (ViT-B/16): symmetric InfoNCE between the mean of its frame embeddings and the clip's caption
  (how CLIP is used for video). Frame-only objectives (single frames vs static captions) were left out:
  the budget went to motion, which is what the demo asks.
- viclip (ViT-B/16): symmetric InfoNCE between the clip embedding and the caption; a clip and its
  reversal carry opposite captions, so the temporal position embedding has to learn order.
- dinov2 (ViT-B/14): a stand-in for self-distillation: InfoNCE between the class tokens of two frames of
  one clip (a throwaway projection head), plus CLIP's motion/shape/colour classifiers on the mean of the
  frames' class tokens: in 300-step runs a linear probe on the demo rose from 26.6 (the contrastive part
  alone, with crops and colour changes, as before) to 38.3 (docs/demo-weights.md).
- videomae (ViT-B/16): masked tube reconstruction (75% of the 16x16 positions hidden in every frame
  pair) with a throwaway one-block decoder at the encoder's sine-cosine positions, loss on per-tubelet
  normalised pixels, plus the motion/shape/colour classifiers on the whole clip's mean token, each clip
  beside its reversal (as ViCLIP's): reconstruction alone (the earlier 60-step files, no curriculum)
  taught nothing the demo can use; it was not run alone at 1000 steps.
- chinese_clip (RoBERTa-wwm-ext-base): InfoNCE between Chinese captions and the frozen, just
  pretrained tiny CLIP's frame-mean embedding of the same clips (the space Chinese-CLIP text meets CLIP's).

Token-embedding rows of tokens no caption used carry nothing learned; they are stored as zeros and
every tensor rounded to float16 (stored so: the token tables; as float32: the rest), so the files stay
small. Same seed, same threads -> the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import captioned  # benchmarks/captioned.py, beside this script
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from composer.backbones import videomae
from composer.backbones.demo_weights import FILES, MANIFEST
from composer.backbones.registry import Request, get_family
from composer.data import transforms

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "composer" / "backbones" / "demo-weights"
STEPS = {"clip": 1000, "viclip": 1000, "dinov2": 1000, "videomae": 1000, "chinese_clip": 300}
TOKEN_TABLES = ("token_embedding.weight", "word_embeddings.weight")
ORDER = ("clip", "viclip", "chinese_clip", "dinov2", "videomae")  # chinese_clip learns against clip's file
LR = {"clip": 1e-3, "viclip": 1e-3, "dinov2": 1e-3, "videomae": 1e-3, "chinese_clip": 1e-3}


def tiny(family: str, size: str) -> nn.Module:
    request = Request(size=size, tiny=True, weights=None, load=False, image_size=captioned.SIZE,
                      frames=captioned.FRAMES)
    return get_family(family).build(request, None, family)


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    target = torch.arange(len(a))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class Attributes(nn.Module):
    """Throwaway cosine classifiers shared by the video and the text embedding: motion, shape and colour.
    Contrastive learning alone stayed at chance for hundreds of steps from these random tiny towers (every
    embedding nearly the same); classifying both sides' attributes with the same prototypes gives a
    strong signal from the first step and pulls a clip and its caption to the same place."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({"motion": nn.Linear(dim, len(captioned.MOTIONS), bias=False),
                                    "shape": nn.Linear(dim, len(captioned.SHAPES), bias=False),
                                    "colour": nn.Linear(dim, len(captioned.COLOURS), bias=False)})

    def forward(self, embedding: torch.Tensor, b: captioned.Batch, colour: bool = True) -> torch.Tensor:
        """`colour`: False for clips whose colours the augmentation changed (jitter, greyscale)."""
        labels = {"motion": [list(captioned.MOTIONS).index(m) for m in b.motions],
                  "shape": [captioned.SHAPES.index(s) for s in b.shapes],
                  "colour": [list(captioned.COLOURS).index(c) for c in b.colours]}
        unit = F.normalize(embedding, dim=-1)
        return sum(F.cross_entropy(10 * unit @ F.normalize(head.weight, dim=-1).T, torch.tensor(labels[name]))
                   for name, head in self.heads.items() if colour or name != "colour")


def augmented(video: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The clips as `composer run` augments training clips (composer/data/transforms.py: one random crop of
    a quarter to all of the frame, resized back, and MSTA's colour jitter and greyscale, the same for every
    frame of a clip; no flip, the demo's classes are left/right): so the frozen features a spec fine-tunes
    on move little under the augmentation it trains with."""
    size = video.shape[-1]
    rng = random.Random(int(torch.randint(2**31, (1,), generator=g)))
    with torch.random.fork_rng():
        torch.manual_seed(rng.randrange(2**31))
        cropped = torch.stack([transforms.crop((clip * 255).round().to(torch.uint8),
                                               transforms.train_geometry(size, flip=False)) for clip in video])
    params = torch.stack([transforms.draw_colour(rng) for _ in range(len(video))])
    return transforms.colour(transforms.to_unit(cropped), params)


def easy_share(step: int, steps: int) -> float:
    """The curriculum: the share of easy scenes (a white shape on black) at `step`: all of them for the
    first 20% of the steps, falling linearly to a quarter at 70%, a quarter after."""
    return max(0.25, min(1.0, 1.0 - 0.75 * (step / steps - 0.2) / 0.5))


def position_tables(*tables: torch.Tensor) -> None:
    """Start position tables at unit scale. The builders' scale (width ** -0.5, as in CLIP) is for towers
    that learn from hundreds of millions of images; from scratch, in hundreds of steps, the tiny towers
    could not even learn where a white square is until the tables were as large as the patch tokens."""
    with torch.no_grad():
        for table in tables:
            table.copy_(torch.randn(table.shape))


def schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warm = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def train(name: str, params: list[nn.Parameter], loss_fn, steps: int, batch: int, g: torch.Generator,
          log_every: int, curriculum: bool = False, **clips) -> float:
    """AdamW with warm-up and cosine decay; `loss_fn(batch)` -> loss; `curriculum`: easy scenes first
    (`easy_share`). Returns the mean of the last 10% of losses."""
    optimizer = torch.optim.AdamW(params, lr=LR[name], weight_decay=0.05)
    scheduler = schedule(optimizer, steps)
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(steps):
        easy = easy_share(step, steps) if curriculum else 0.0
        loss = loss_fn(captioned.batch(batch, g, easy=easy, **clips))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"{name} step {step + 1}/{steps} loss {loss.item():.4f} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    tail = losses[-max(1, steps // 10):]
    return sum(tail) / len(tail)


def used_rows(ids: set[int], table: torch.Tensor) -> torch.Tensor:
    keep = torch.zeros(table.shape[0], dtype=torch.bool)
    keep[sorted(ids)] = True
    return torch.where(keep[:, None], table, torch.zeros_like(table))


def open_clip_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our fused attention (attn.qkv, an nn.Linear) back to nn.MultiheadAttention's in_proj names."""
    return {k.replace("attn.qkv.weight", "attn.in_proj_weight").replace("attn.qkv.bias", "attn.in_proj_bias"): v
            for k, v in state.items()}


def videomae_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' VideoMAE names -> the original code's (what videomae.from_original reads)."""
    out = {}
    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.layer.")}
    for i in sorted(layers):
        p = f"encoder.layer.{i}."
        a = p + "attention.attention."
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([state[a + "query.weight"], state[a + "key.weight"],
                                                        state[a + "value.weight"]])
        out[f"blocks.{i}.attn.q_bias"] = state[a + "query.bias"]
        out[f"blocks.{i}.attn.v_bias"] = state[a + "value.bias"]
        for ours, theirs in (("layernorm_before", "norm1"), ("layernorm_after", "norm2"),
                             ("attention.output.dense", "attn.proj"), ("intermediate.dense", "mlp.fc1"),
                             ("output.dense", "mlp.fc2")):
            for kind in ("weight", "bias"):
                out[f"blocks.{i}.{theirs}.{kind}"] = state[f"{p}{ours}.{kind}"]
    for kind in ("weight", "bias"):
        out[f"patch_embed.proj.{kind}"] = state[f"embeddings.patch_embeddings.projection.{kind}"]
        out[f"norm.{kind}"] = state[f"layernorm.{kind}"]
    return out


def clip_token_ids(texts: list[str], context: int) -> set[int]:
    import open_clip

    return set(open_clip.tokenize(texts, context_length=context).unique().tolist())


def pretrain_clip(args, g) -> tuple[dict, dict]:
    backbone = tiny("clip", "ViT-B/16")
    model, visual, text = backbone.model, backbone.towers["visual"], backbone.towers["text"]
    seen: set[int] = set()

    heads = Attributes(visual.out_dim)
    position_tables(model.visual.positional_embedding)

    def loss_fn(b: captioned.Batch) -> torch.Tensor:
        seen.update(clip_token_ids(b.captions, model.context_length))
        video = visual.run(b.video, grad_from=0)[""].mean(dim=1)
        words = text.run(b.captions, grad_from=0)[""]
        return info_nce(video, words, model.logit_scale.exp().clamp(max=100)) + heads(video, b) + heads(words, b)

    model.train()
    # the text is causal and read at its end token: 32 positions give the same embedding as 77 for
    # captions that fit (all of ours), at less than half the cost; the frame mean is over 4 of the 8 frames
    full, model.context_length = model.context_length, 32
    loss = train("clip", list(model.parameters()) + list(heads.parameters()), loss_fn, args.steps or STEPS["clip"],
                 args.batch, g, args.log_every, curriculum=True, frames=4, pairs="motion")
    model.context_length = full
    state = open_clip_names(model.state_dict())
    state["token_embedding.weight"] = used_rows(seen, state["token_embedding.weight"])
    return state, {"final_loss": loss, "activation": "gelu",
                   "objective": "InfoNCE: frame-mean video vs caption, plus motion/shape/colour classifiers "
                                "shared by both sides"}


def pretrain_viclip(args, g) -> tuple[dict, dict]:
    backbone = tiny("viclip", "ViT-B/16")
    model, visual, text = backbone.model, backbone.towers["visual"], backbone.towers["text"]
    with torch.no_grad():
        model.temp.fill_(0.07)  # CLIP's starting temperature; the official release ends at 0.01
    # the official temporal table starts at zero because ViCLIP starts from CLIP; from scratch, a model
    # blind to order gets the same gradient at every frame position and the table stays (nearly) constant,
    # so it starts random here, like the spatial one
    position_tables(model.vision_encoder.positional_embedding, model.vision_encoder.temporal_positional_embedding)
    seen: set[int] = set()

    heads = Attributes(visual.out_dim)

    def loss_fn(b: captioned.Batch) -> torch.Tensor:
        seen.update(clip_token_ids(b.captions, model.text_encoder.context_length))
        video = visual.run(b.video, grad_from=0)[""]
        words = text.run(b.captions, grad_from=0)[""]
        return info_nce(video, words, 1 / model.temp.clamp(min=0.01)) + heads(video, b) + heads(words, b)

    model.train()
    loss = train("viclip", list(model.parameters()) + list(heads.parameters()), loss_fn,
                 args.steps or STEPS["viclip"], args.batch, g,
                 args.log_every, curriculum=True, pairs="reverse")
    state = open_clip_names(model.state_dict())
    state["text_encoder.token_embedding.weight"] = used_rows(seen, state["text_encoder.token_embedding.weight"])
    return state, {"final_loss": loss,
                   "objective": "InfoNCE: clip embedding vs caption, each clip beside its reversal, plus "
                                "motion/shape/colour classifiers shared by both sides"}


def pretrain_dinov2(args, g) -> tuple[dict, dict]:
    backbone = tiny("dinov2", "ViT-B/14")
    model, visual = backbone.model, backbone.towers["visual"]
    position_tables(model.pos_embed)  # the class token's row too: timm's table covers it
    head = nn.Sequential(nn.Linear(visual.width, 128), nn.GELU(), nn.Linear(128, 64))  # thrown away
    heads = Attributes(visual.width)

    def loss_fn(b: captioned.Batch) -> torch.Tensor:
        n, t = b.video.shape[:2]
        cls = visual.run(augmented(b.video, g) if args.augment else b.video, grad_from=0)[""]  # [N, T, D]
        pick = torch.randint(t, (2, n), generator=g)
        a, c = (head(cls[torch.arange(n), pick[i]]) for i in range(2))
        return info_nce(a, c, torch.tensor(10.0)) + heads(cls.mean(dim=1), b, colour=not args.augment)

    model.train()
    loss = train("dinov2", list(model.parameters()) + list(head.parameters()) + list(heads.parameters()), loss_fn,
                 args.steps or STEPS["dinov2"], args.batch, g, args.log_every, curriculum=True, frames=4,
                 pairs="motion")
    return dict(model.state_dict()), {"final_loss": loss,
                                      "objective": "InfoNCE between the class tokens of two frames of a clip (stand-in "
                                                   "for DINO self-distillation), plus motion/shape/colour classifiers "
                                                   "of the frame mean; curriculum"
                                                   + ("; clips augmented as composer run's (crop, colour), no "
                                                      "colour classifier" if args.augment else "")}


class TubeDecoder(nn.Module):
    """A throwaway decoder: visible tokens + mask tokens at the encoder's fixed sine-cosine positions (as in
    VideoMAE) -> one block -> tubelet pixels."""

    def __init__(self, width: int, position: torch.Tensor, pixels: int) -> None:
        super().__init__()
        self.mask = nn.Parameter(torch.zeros(width))
        self.register_buffer("position", position)
        self.block = nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.out = nn.Linear(width, pixels)

    def forward(self, visible: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        n, tokens = masked.shape
        x = self.mask.expand(n, tokens, -1).clone()
        x[~masked] = visible.reshape(-1, visible.shape[-1])
        return self.out(self.block(x + self.position))[masked].view(n, -1, self.out.out_features)


def pretrain_videomae(args, g) -> tuple[dict, dict]:
    request = Request(size="ViT-B/16", tiny=True, weights=None, load=False, image_size=captioned.SIZE,
                      frames=captioned.FRAMES)
    # eps 1e-6 and a final norm: what the local-file loader builds for a file holding `norm.*`
    model = videomae.VideoMAEModel(videomae._config(request, mean_pooling=False, eps=1e-6))
    mean, std = (torch.tensor(v).view(1, 1, 3, 1, 1) for v in (videomae.IMAGENET_MEAN, videomae.IMAGENET_STD))
    tt, grid, p = captioned.FRAMES // videomae.TUBELET, captioned.SIZE // videomae.PATCH, videomae.PATCH
    tokens, pixels = tt * grid * grid, videomae.TUBELET * p * p * 3
    # the position table is VideoMAE's fixed sine-cosine one, rebuilt by the loader (not in the file), so it
    # keeps its scale: starting the patch projection smaller to make the table count more did worse
    decoder = TubeDecoder(model.config.hidden_size, model.embeddings.position_embeddings[0].clone(), pixels)
    heads = Attributes(model.config.hidden_size)
    hidden = grid * grid * 3 // 4

    def loss_fn(b: captioned.Batch) -> torch.Tensor:
        n = len(b.captions)
        spatial = torch.stack([torch.randperm(grid * grid, generator=g) < hidden for _ in range(n)])
        masked = spatial.repeat(1, tt)  # a tube: the same positions hidden in every frame pair (t-major tokens)
        video = ((augmented(b.video, g) if args.augment else b.video) - mean) / std
        visible = model(pixel_values=video, bool_masked_pos=masked).last_hidden_state
        # [N, T, 3, S, S] -> [N, t, h, w, (tubelet p p 3)], t-major like the tokens
        target = video.view(n, tt, videomae.TUBELET, 3, grid, p, grid, p).permute(0, 1, 4, 6, 2, 5, 7, 3)
        target = target.reshape(n, tokens, pixels)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        reconstruction = F.mse_loss(decoder(visible, masked), target[masked].view(n, -1, pixels))
        # the classifiers read the whole clip as the tower gives it (the mean token), not the masked one
        return reconstruction + heads(model(pixel_values=video).last_hidden_state.mean(dim=1), b,
                                      colour=not args.augment)

    model.train()
    loss = train("videomae", list(model.parameters()) + list(decoder.parameters()) + list(heads.parameters()), loss_fn,
                 args.steps or STEPS["videomae"], args.batch, g, args.log_every, curriculum=True, pairs="reverse")
    return videomae_original(model.state_dict()), {
        "final_loss": loss,
        "objective": "masked tube reconstruction (75%), one-block decoder, plus motion/shape/colour classifiers of the "
                     "whole clip's mean token, each clip beside its reversal; curriculum"
                     + ("; clips augmented as composer run's (crop, colour), no colour classifier" if args.augment
                        else "")}


def pretrain_chinese_clip(args, g, clip_file: Path) -> tuple[dict, dict]:
    # the teacher: the CLIP just pretrained, read back by CLIP's own loader
    teacher = get_family("clip").build(Request(size="ViT-B/16", tiny=True, weights=str(clip_file), load=True,
                                               image_size=captioned.SIZE, frames=captioned.FRAMES,
                                               activation="gelu"), None, "clip")
    backbone = tiny("chinese_clip", "RoBERTa-wwm-ext-base")
    text, scale = backbone.towers["text"], nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    seen: set[int] = set()

    teacher.model.context_length = 32  # causal text read at its end token: the same embedding, cheaper

    def loss_fn(b: captioned.Batch) -> torch.Tensor:
        seen.update(i for ids in backbone.tokenizer(b.captions_zh)["input_ids"] for i in ids)
        with torch.no_grad():
            video = teacher.towers["visual"].run(b.video, grad_from=None)[""].mean(dim=1)
            english = teacher.towers["text"].run(b.captions, grad_from=None)[""]
        chinese = text.run(b.captions_zh, grad_from=0)[""]
        t = scale.exp().clamp(max=100)
        return info_nce(chinese, video, t) + info_nce(chinese, english, t) + \
            (1 - F.cosine_similarity(chinese, english)).mean()

    backbone.model.train()
    loss = train("chinese_clip", list(backbone.model.parameters()) + list(backbone.projection.parameters()) + [scale],
                 loss_fn, args.steps or STEPS["chinese_clip"], args.batch, g, args.log_every, frames=4, pairs="motion")
    state = {f"text_model.{k}": v for k, v in backbone.model.state_dict().items()}
    state["text_model.embeddings.word_embeddings.weight"] = used_rows(
        seen, state["text_model.embeddings.word_embeddings.weight"])
    state["text_projection.weight"] = backbone.projection.weight.detach()
    return state, {"final_loss": loss, "objective": "InfoNCE: Chinese caption vs the frozen demo CLIP's frame mean and "
                                              "its embedding of the English caption of the same clip"}


def storable(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor rounded to float16; the token tables stay float16 (most of the bytes, mostly zeros), the
    rest is stored as float32, because loaders resample position tables on the CPU (open_clip's bicubic
    resize for another image size), which float16 does not support."""
    out = {}
    for key, value in state.items():
        value = value.detach().to(torch.float16)
        out[key] = (value if key.endswith(TOKEN_TABLES) else value.float()).contiguous()
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the files and manifest.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="steps for every family (default: STEPS)")
    parser.add_argument("--batch", type=int, default=32, help="clips per step")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the files depend on it)")
    parser.add_argument("--families", default=",".join(FILES), help="comma-separated (chinese_clip needs clip)")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--augment", action="store_true",
                        help="dinov2 and videomae see their clips as `composer run` augments them (crop, colour)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    families = args.families.split(",")
    if "chinese_clip" in families and "clip" not in families and not (args.out / FILES["clip"][1]).exists():
        parser.error(f"chinese_clip learns against the demo clip, and {args.out} has none: add clip to --families")
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/pretrain_demo.py " + " ".join(sys.argv[1:] if argv is None else argv)
    total = time.perf_counter()
    for family in [f for f in ORDER if f in families]:
        start, cpu = time.perf_counter(), time.process_time()
        g = torch.Generator().manual_seed(args.seed * 1000 + list(FILES).index(family))
        torch.manual_seed(args.seed * 1000 + list(FILES).index(family))  # the random initialisation
        run = {"clip": pretrain_clip, "viclip": pretrain_viclip, "dinov2": pretrain_dinov2,
               "videomae": pretrain_videomae}.get(family)
        state, info = run(args, g) if run else pretrain_chinese_clip(args, g, args.out / FILES["clip"][1])
        size, name = FILES[family]
        path = args.out / name
        save_file(storable(state), str(path))
        entry = {"size": size, "file": name, "sha256": sha256(path), "seed": args.seed,
                 "steps": args.steps or STEPS[family],
                 "seconds": round(time.perf_counter() - start, 1),
                 # on a shared machine the wall time says as much about the neighbours as about the run
                 "cpu_seconds": round(time.process_time() - cpu, 1), "command": command, **info}
        record(args, family, entry)
        print(f"{family}: {path} ({path.stat().st_size / 1e6:.1f} MB, {entry['seconds']} s)", flush=True)
    print(f"done in {time.perf_counter() - total:.0f} s: {args.out / MANIFEST}")


def record(args, family: str, entry: dict) -> None:
    """Add one family's entry to the manifest, keeping the others': each family depends only on the seed
    (and chinese_clip on clip's file), so families may be pretrained by separate commands, in parallel."""
    path = args.out / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"files": {}}
    manifest.update({"seed": args.seed, "threads": args.threads, "batch": args.batch, "torch": torch.__version__,
                     "data": "benchmarks/captioned.py (64 px, fresh clips every step)"})
    if any(manifest["files"].get(f, {}).get("seed", args.seed) != args.seed for f in manifest["files"]):
        raise SystemExit(f"{path} holds families pretrained with another seed; use another --out")
    manifest["files"][family] = entry
    manifest["seconds"] = round(sum(e["seconds"] for e in manifest["files"].values()), 1)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    main()
