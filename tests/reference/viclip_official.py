"""A reference of ViCLIP in the official layout (InternVid's viclip_vision.py / viclip_text.py, written
from its description): nn.MultiheadAttention, sequence-first, per-frame class tokens of which the first
B rows are kept. Used to check our implementation (tests) and to time it against ours (benchmarks)."""

import torch
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x, mask=None):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Blocks(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList(Block(width, heads) for _ in range(layers))


class Vision(nn.Module):
    def __init__(self, width, layers, heads, patch, out, image_size=224, frames=8):
        super().__init__()
        self.conv1 = nn.Conv3d(3, width, (1, patch, patch), (1, patch, patch), bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width ** -0.5)
        self.positional_embedding = nn.Parameter(torch.randn((image_size // patch) ** 2 + 1, width) * 0.02)
        self.temporal_positional_embedding = nn.Parameter(torch.randn(1, frames, width) * 0.02)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Blocks(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out) * width ** -0.5)

    def forward(self, x):  # [B, 3, T, H, W], normalised
        x = self.conv1(x)
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)
        x = torch.cat([self.class_embedding.expand(b * t, 1, c), x], dim=1) + self.positional_embedding
        cls, x = x[:b, :1], x[:, 1:]
        x = x.reshape(b, t, h * w, c).permute(0, 2, 1, 3).reshape(b * h * w, t, c)
        x = x + (self.temporal_positional_embedding.mean(1) if t == 1 else self.temporal_positional_embedding)
        x = x.reshape(b, h * w * t, c)
        x = self.ln_pre(torch.cat([cls, x], dim=1)).permute(1, 0, 2)
        for block in self.transformer.resblocks:
            x = block(x)
        return self.ln_post(x)[0] @ self.proj


class Text(nn.Module):
    def __init__(self, width, layers, heads, embed, context=32, vocab=49408):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.randn(context, width) * 0.01)
        self.transformer = Blocks(width, layers, heads)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.randn(width, embed) * width ** -0.5)
        self.context = context

    def forward(self, ids):
        mask = torch.full((self.context, self.context), float("-inf")).triu_(1)
        x = (self.token_embedding(ids) + self.positional_embedding).permute(1, 0, 2)
        for block in self.transformer.resblocks:
            x = block(x, mask)
        x = self.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection


class ViCLIPOfficial(nn.Module):
    def __init__(self, width=64, layers=2, heads=2, patch=16, out=64, text_width=64, text_layers=2, text_heads=2,
                 embed=64, image_size=224):
        super().__init__()
        self.vision_encoder = Vision(width, layers, heads, patch, out, image_size)
        self.text_encoder = Text(text_width, text_layers, text_heads, embed)
        self.temp = nn.Parameter(torch.tensor(1 / 100))
