# DINOv2 ViT-B/14 + DoRA + linear head, in the text syntax (the same IR as dinov2-dora-linear.yaml).
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

losses { ce_loss = 1.0 }
train { lr = 1e-3, epochs = 20, batch_size = 32, warmup_epochs = 2, weight_decay = 0.05 }
