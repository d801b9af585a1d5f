"""4. ViCLIP: our implementation (batch-first, through composer's block runner with scaled_dot_product_attention)
against the official architecture's layout (nn.MultiheadAttention, sequence-first; tests/reference/
viclip_official.py), with the same weights: outputs, training-step time and memory.
"""

from __future__ import annotations

import argparse
import sys

import torch
from common import ROOT, cuda_peak, device, fmt, interleaved, mib, ratio, save, saved_bytes, summary

sys.path.insert(0, str(ROOT / "tests"))
from reference.viclip_official import ViCLIPOfficial  # noqa: E402

from composer.backbones import viclip  # noqa: E402
from composer.backbones.registry import Request  # noqa: E402

CONFIGS = {"tiny": dict(width=64, layers=12, heads=2, patch=16, out=512, text_width=64, text_layers=12, text_heads=2,
                        embed=512),
           "base": dict(width=768, layers=12, heads=12, patch=16, out=512, text_width=512, text_layers=12,
                        text_heads=8, embed=512)}


def pair(size: str, image: int):
    torch.manual_seed(0)
    official = ViCLIPOfficial(image_size=image, **CONFIGS[size]).to(device())
    ours_model = viclip.ViCLIPModel(CONFIGS[size], image).to(device())
    viclip.load_strict(ours_model, official.state_dict(), "benchmark")
    request = Request(size="ViT-B/16", tiny=size == "tiny", weights=None, load=False, image_size=image, frames=8,
                      device=device())
    ours = viclip.ViCLIPBackbone(request, ours_model)
    for p in list(official.parameters()) + list(ours.parameters()):
        p.requires_grad_(True)  # full fine-tuning: the whole encoder trains
    return official, ours


def measure(size: str, frames: int, image: int, clips: int, repeats: int) -> dict:
    official, ours = pair(size, image)
    video = torch.rand(clips, frames, 3, image, image, device=device())
    normalised = ours.normalize(video.flatten(0, 1)).view(clips, frames, 3, image, image)
    tower = ours.towers["visual"]

    def ours_step():
        return tower.run(video, 0)[""].float().pow(2).mean()

    def official_step():
        return official.vision_encoder(normalised.permute(0, 2, 1, 3, 4)).float().pow(2).mean()

    with torch.no_grad():
        a = tower.run(video, None)[""]
        b = official.vision_encoder(normalised.permute(0, 2, 1, 3, 4))
    times = interleaved({"ours": lambda: ours_step().backward(), "official": lambda: official_step().backward()},
                        repeats=repeats)
    return {"size": size, "frames": frames, "image": image, "tokens": 1 + (image // 16) ** 2 * frames, "clips": clips,
            "max_abs_diff": (a - b).abs().max().item(), "relative_diff": ((a - b).norm() / b.norm()).item(),
            "ours": summary(times["ours"]), "official": summary(times["official"]),
            "ratio": ratio(times["ours"], times["official"]),
            "saved_ours": saved_bytes(ours_step, ours), "saved_official": saved_bytes(official_step, official),
            "peak_ours": cuda_peak(ours_step), "peak_official": cuda_peak(official_step)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [measure("tiny", 8, 224, 1, args.repeats), measure("base", 8, 112, 1, args.repeats)]
    lines = ["## 4. ViCLIP: ours against the official layout", "",
             "A full fine-tuning step of the vision encoder (every weight trains) on one clip, same weights "
             "(base at 112 px to keep a CPU step short), "
             f"{args.repeats} interleaved repeats. Ours runs batch-first through the block runner with "
             "scaled_dot_product_attention; the official layout runs nn.MultiheadAttention sequence-first.", "",
             "| size | frames | px | tokens | max output diff. (relative) | ours | official | time ratio | saved for backward: ours / official | GPU peak |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        q = r["ratio"]
        lines.append(f"| {r['size']} | {r['frames']} | {r['image']} | {r['tokens']} | {r['max_abs_diff']:.1e} ({r['relative_diff']:.1e}) "
                     f"| {fmt(r['ours'])} | {fmt(r['official'])} | {fmt(q, '')} | "
                     f"{mib(r['saved_ours'])} / {mib(r['saved_official'])} | {mib(r['peak_ours'])} / "
                     f"{mib(r['peak_official'])} |")
    save("4_viclip_layout", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
