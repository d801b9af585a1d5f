"""frame_tokens: the temporal position embeddings must be visible to the LayerNorm that reads the tokens
(docs/reproduction.md, "DINOv2 + CLIP"): at ViT's 0.02 two frames with the same content were almost the
same token, and the DINOv2 + CLIP specs could not learn a clip's direction in a short run."""

import torch

from composer.components.fusion.frame_tokens import FrameTokensParams
from composer.components.fusion.frame_tokens_module import FrameTokens


def _same_content_cosine(p: FrameTokensParams) -> float:
    """Mean cosine, after LayerNorm, between the tokens of one frame's features placed at the first and at the
    last of 8 positions (a static clip)."""
    torch.manual_seed(0)
    tokens = FrameTokens(8, 64, p)
    frames = torch.randn(16, 1, 64).expand(16, 8, 64)  # every frame of a clip the same
    with torch.no_grad():
        normed = torch.nn.functional.layer_norm(tokens(frames), (p.out_dim,))
    return torch.nn.functional.cosine_similarity(normed[:, 0], normed[:, -1], dim=-1).mean().item()


def test_positions_tell_frames_apart_after_layer_norm():
    assert _same_content_cosine(FrameTokensParams()) < 0.8
    # the old start, still reachable as a param, is what the test guards against
    assert _same_content_cosine(FrameTokensParams(position_std=0.02)) > 0.99
