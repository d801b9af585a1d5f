# The text-syntax form of temporal-prompts-dual-text.yaml (the same IR; tests check it).
# Temporal prompts with a reparameterisation encoder and dual (English + Chinese) semantic supervision
# (Deng, Tan and Liu, "Adapting CLIP for Action Recognition via Dual Semantic Supervision and Temporal
# Prompt Reparameterization", Electronics 2024, 13(16):3348). Frozen CLIP ViT-B/16 with per-layer
# temporal prompts (Eq. 8-14, encoder R(2+1)D), word-query frame pooling (Eq. 6-7), a frozen Chinese-CLIP
# text branch over a Chinese label dictionary, label-aware InfoNCE for both texts (Eq. 15-17, tau 0.01),
# and lambda-fused scores at inference. 8 frames: 54.54M trainable (the paper reports 54.2M at T = 8).

spec "temporal-prompts-dual-text"
description "temporal prompts + reparameterisation encoder on frozen CLIP ViT-B/16, English + Chinese supervision"
paper "Deng et al., Electronics 2024 13(16):3348"

input video: video(frames=8, size=224)

backbone clip: clip(size="ViT-B/16", weights="openai")
backbone chinese: chinese_clip(size="RoBERTa-wwm-ext-base", weights="OFA-Sys/chinese-clip-vit-base-patch16")

component time: temporal_embedding at clip.visual.input
component prompts: temporal_prompts(global_prompts=8, encoder="r2plus1d", encoder_width=400, residual=true) at clip.visual.blocks[*].tokens
component english: text_template(template="This is a video about {}.")
component chinese_labels: class_texts(file="@chinese_labels")
component pool: word_query_pooling(temperature=0.01)
component head_en: cosine_logits(scale=100.0)
component head_zh: cosine_logits(scale=100.0)
component fuse: score_fusion(weight=0.5)
component nce_en: infonce(temperature=0.01)
component nce_zh: infonce(temperature=0.01)

flow {
  frames = clip.visual(video)
  words = clip.text.tokens(class_names)
  word_mask = clip.text.word_mask(class_names)
  clip_emb = pool(frames, words, word_mask)
  en_texts = english(class_names)
  en_emb = clip.text(en_texts)
  zh_texts = chinese_labels(class_names)
  zh_emb = chinese.text(zh_texts)
  logits_en = head_en(clip_emb, en_emb)
  logits_zh = head_zh(clip_emb, zh_emb)
  logits = fuse(logits_en, logits_zh)
  loss_en = nce_en(clip_emb, en_emb, label)
  loss_zh = nce_zh(clip_emb, zh_emb, label)
}

losses {
  loss_en = 1.0
  loss_zh = 1.0
}

train {
  optimizer = "adamw"
  lr = 5e-06
  weight_decay = 0.01
  betas = [0.9, 0.999]
  warmup_epochs = 5
  epochs = 30
  batch_size = 32
  views = {clips = 4, crops = 3}
}

reported {
  trainable_params = 54230000.0
  source = "Table 6 (T = 8)"
}
