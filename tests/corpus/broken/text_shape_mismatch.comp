# expect: 13:12 video embedding must be [B, D], got [B, 8, 512]
backbone clip: clip(size="ViT-B/16")
component adapter: bottleneck_adapter(dim=8) at clip.visual.blocks[*].mlp
component prompt: text_template
component pool: temporal_mean
component head: cosine_logits
component ce: cross_entropy
flow {
  frames = clip.visual(video)
  clip_emb = pool(frames)
  texts = prompt(class_names)
  class_emb = clip.text(texts)
  logits = head(frames, class_emb)
  ce_loss = ce(logits, label)
}
losses { ce_loss = 1.0 }
