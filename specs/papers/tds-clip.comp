# The text-syntax form of tds-clip.yaml (the same IR; tests check it).
# TDS-CLIP: a temporal-difference side network beside a frozen CLIP ViT-B/16 (Wang et al., arXiv
# 2408.10688). CLIP sees the centre frame of each 5-frame window; detached taps of its 12 blocks feed the
# side network (width 320) with the SME-Adapter stem and TD-Adapters; a linear head classifies. No
# gradient reaches CLIP (the taps are detached and the plan runs it without autograd).

spec "tds-clip"
description "TDS-CLIP side network (d=320) on frozen CLIP ViT-B/16, 8 segments x 5 frames"
paper "TDS-CLIP (Wang et al., arXiv 2408.10688)"

input video: video(frames=8, size=224, window=5)

backbone clip: clip(size="ViT-B/16", weights="openai")

component layers: tap(detach=true) at clip.visual.blocks[*].block
component centre: center_frame
component side: tds_side_network(dim=320, patch=16, sme=true, td_adapter=true)
component head: linear_head
component ce: cross_entropy(label_smoothing=0.1)

flow {
  centre_frames = centre(video)
  clip_frames = clip.visual(centre_frames)
  side_features = side(video, layers)
  logits = head(side_features)
  ce_loss = ce(logits, label)
}

losses {
  ce_loss = 1.0
}

train {
  optimizer = "adamw"
  lr = 0.001
  weight_decay = 0.15
  betas = [0.9, 0.999]
  warmup_epochs = 4
  epochs = 30
  batch_size = 16
  views = {clips = 4, crops = 3}
}
