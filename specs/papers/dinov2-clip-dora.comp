# The text-syntax form of dinov2-clip-dora.yaml (the same IR; tests check it).
# Independent DINOv2 (image) and CLIP (text) backbones adapted with PEFT and fused (Pehlivan et al.,
# "Adapting independent large-scale pretrained models for human action recognition", Turk. J. Elec. Eng.
# & Comp. Sci. 34(3):437-452, 2026). The best variant: DoRA on DINOv2-B/14 and an adapter on the CLIP
# text encoder; per-frame tokens with temporal position embeddings and a small fusion transformer over
# visual and text tokens. Only the abstract is public: ranks, widths and depths are documented defaults.

spec "dinov2-clip-dora"
description "DoRA on DINOv2-B/14 + adapters on the CLIP text encoder + fusion transformer"
paper "Pehlivan et al., Turk. J. EECS 34(3), 2026"

input video: video(frames=8, size=224)

backbone dino: dinov2(size="ViT-B/14", weights="lvd142m")
backbone clip: clip(size="ViT-B/16", weights="openai")

component dora: dora(r=8, alpha=16) at [dino.visual.blocks[*].attn.qkv, dino.visual.blocks[*].attn.out]
component text_adapter: bottleneck_adapter(dim=64, scale=0.1) at clip.text.blocks[*].mlp parallel
component prompt: text_template(template="a video of a person {}.")
component frame_tokens: frame_tokens(out_dim=512)
component fusion: fusion_transformer(layers=2, heads=8)
component head: cosine_logits(scale=100.0)
component ce: cross_entropy

flow {
  frames = dino.visual(video)
  tokens = frame_tokens(frames)
  texts = prompt(class_names)
  class_emb = clip.text(texts)
  clip_emb = fusion(tokens, class_emb)
  logits = head(clip_emb, class_emb)
  ce_loss = ce(logits, label)
}

losses {
  ce_loss = 1.0
}

train {
  lr = 0.0005
  weight_decay = 0.05
  warmup_epochs = 2
  epochs = 30
  batch_size = 16
  views = {clips = 2, crops = 3}
}
