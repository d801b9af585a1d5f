# The text-syntax form of clip-zero-shot.yaml (the same IR; tests check it).
# Zero-shot CLIP: frozen ViT-B/16, frame embeddings averaged over time, cosine similarity with the
# embeddings of "a video of a {class}." (Radford et al., ICML 2021). Nothing trains; it only evaluates.

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

reported {
  gflops = 281.0
  source = "MSTA Table 2, vanilla CLIP (8 frames)"
}
