# The text-syntax form of dinov2-dora-linear.yaml (the same IR; tests check it).
# DINOv2 ViT-B/14 with DoRA (r=8) on the fused qkv projection of every block, frame embeddings averaged
# over time, and a linear classifier. DoRA here has 322,560 trainable parameters (12 x (8x768 + 2304x8
# + 2304)); the head adds 768 x C + C.

spec "dinov2-dora-linear"
description "DINOv2 ViT-B/14 + DoRA on attn.qkv (all blocks), frame mean, linear head"

backbone dino: dinov2(size="ViT-B/14", weights="lvd142m")

component dora: dora(r=8, alpha=16) at dino.visual.blocks[*].attn.qkv
component pool: temporal_mean
component head: linear_head
component ce: cross_entropy(label_smoothing=0.1)

flow {
  frames = dino.visual(video)
  clip_emb = pool(frames)
  logits = head(clip_emb)
  ce_loss = ce(logits, label)
}

losses {
  ce_loss = 1.0
}

train {
  lr = 0.001
  epochs = 20
  batch_size = 32
  warmup_epochs = 2
  weight_decay = 0.05
}
