# expect: 3:49 layer 99 does not exist
backbone clip: clip(size="ViT-B/16")
component adapter: bottleneck_adapter(dim=8) at clip.visual.blocks[99].mlp
component prompt: text_template
component pool: temporal_mean
component head: cosine_logits
component ce: cross_entropy
flow {
  frames = clip.visual(video)
  clip_emb = pool(frames)
  texts = prompt(class_names)
  class_emb = clip.text(texts)
  logits = head(clip_emb, class_emb)
  ce_loss = ce(logits, label)
}
losses { ce_loss = 1.0 }
