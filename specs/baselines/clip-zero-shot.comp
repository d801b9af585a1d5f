# Zero-shot CLIP in the text syntax (the same IR as clip-zero-shot.yaml).
spec "clip-zero-shot"
description "frozen CLIP ViT-B/16, frame mean, cosine logits against class-name prompts"
paper "CLIP (Radford et al., ICML 2021)"

backbone clip: clip(size="ViT-B/16", weights="openai")

component prompt: text_template(template="a video of a {}.")
component pool: temporal_mean
component head: cosine_logits(scale=100.0)

flow {
  frames = clip.visual(video)
  clip_emb = pool(frames)
  texts = prompt(class_names)
  class_emb = clip.text(texts)
  logits = head(clip_emb, class_emb)
}
