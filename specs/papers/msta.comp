# The text-syntax form of msta.yaml (the same IR; tests check it).
# MSTA: multimodal spatio-temporal adapters on ViCLIP-B/16 with the description consistency loss
# (Chen et al., "Efficient Transfer Learning for Video-language Foundation Models", CVPR 2025).
# Base-to-novel setting of Table 1: r = 256 in layers 1-12 of both towers, lambda = 0.005, alpha = 1,
# N = 2 spatial and 2 temporal descriptions per class. Trainable: 8,712,192 (the paper's 8.7M).

spec "msta"
description "MSTA on ViCLIP-B/16 (r=256, layers 1-12) with the description consistency loss"
paper "MSTA (Chen et al., CVPR 2025)"

input video: video(frames=8, size=224)

backbone viclip: viclip(size="ViT-B/16", weights="OpenGVLab/ViCLIP-B-16-hf")

component msta: msta(dim=256, scale=0.005) at [viclip.visual.blocks[1-12].block, viclip.text.blocks[1-12].block]
component prompt: text_template(template="a video of {}.")
component spatial: class_texts(file="@descriptions", field="spatial", per_class=2)
component temporal: class_texts(file="@descriptions", field="temporal", per_class=2)
component average: mean(axis=1)
component head: cosine_logits(scale=100.0)
component ce: cross_entropy
component consistency: description_consistency

flow {
  clip_emb = viclip.visual(video)
  texts = prompt(class_names)
  class_emb = viclip.text(texts)
  logits = head(clip_emb, class_emb)
  ce_loss = ce(logits, label)
  spatial_texts = spatial(class_names)
  spatial_each = viclip.text.pretrained(spatial_texts)
  spatial_emb = average(spatial_each)
  temporal_texts = temporal(class_names)
  temporal_each = viclip.text.pretrained(temporal_texts)
  temporal_emb = average(temporal_each)
  cc_loss = consistency(class_emb, spatial_emb, temporal_emb)
}

losses {
  ce_loss = 1.0
  cc_loss = 1.0
}

train {
  optimizer = "adamw"
  lr = 0.001
  weight_decay = 0.001
  betas = [0.9, 0.98]
  schedule = "cosine"
  warmup_epochs = 5
  epochs = 11
  batch_size = 32
  views = {clips = 4, crops = 3}
}

reported {
  trainable_params = 8700000.0
  gflops = 179.84
  source = "Table 2 (K400, 8 frames)"
}
