# The text-syntax form of ftp.yaml (the same IR; tests check it).
# FTP, the four-tiered prompts framework (Lu, Jian, Salah and Poppe, "Improving the generalization of
# ViTs for action understanding with VLM pre-training", Pattern Recognition 179:113794, 2026; arXiv
# 2403.16128). A frozen video ViT (VideoMAE ViT-B/16, 16 frames) feeds four feature processors; in a
# pre-training stage each is aligned by InfoNCE with the frozen CLIP text embedding of one tier of VLM
# answers (category, components, description, context; from the dataset's answers file). In the
# fine-tuning stage only the integration layer and the classifier train. The paper publishes no code;
# the processors, integration and temperatures are documented defaults (docs/reproduction.md).

spec "ftp"
description "FTP four feature processors on a frozen VideoMAE ViT-B/16, two training stages"
paper "FTP (Lu et al., Pattern Recognition 2026; arXiv 2403.16128)"

input video: video(frames=16, size=224)

backbone mae: videomae(size="ViT-B/16", weights="MCG-NJU/videomae-base")
backbone clip: clip(size="ViT-B/16", weights="openai")

component proc_category: feature_processor(out_dim=512)
component proc_components: feature_processor(out_dim=512)
component proc_description: feature_processor(out_dim=512)
component proc_context: feature_processor(out_dim=512)
component answers_category: class_texts(file="@ftp_answers", field="category")
component answers_components: class_texts(file="@ftp_answers", field="components")
component answers_description: class_texts(file="@ftp_answers", field="description")
component answers_context: class_texts(file="@ftp_answers", field="context")
component nce_category: infonce(temperature=0.07, learnable=true)
component nce_components: infonce(temperature=0.07, learnable=true)
component nce_description: infonce(temperature=0.07, learnable=true)
component nce_context: infonce(temperature=0.07, learnable=true)
component integrate: integration(out_dim=512)
component head: linear_head
component ce: cross_entropy

flow {
  tokens = mae.visual.tokens(video)
  f_category = proc_category(tokens)
  f_components = proc_components(tokens)
  f_description = proc_description(tokens)
  f_context = proc_context(tokens)
  t_category = answers_category(class_names)
  t_components = answers_components(class_names)
  t_description = answers_description(class_names)
  t_context = answers_context(class_names)
  e_category = clip.text(t_category)
  e_components = clip.text(t_components)
  e_description = clip.text(t_description)
  e_context = clip.text(t_context)
  l_category = nce_category(f_category, e_category, label)
  l_components = nce_components(f_components, e_components, label)
  l_description = nce_description(f_description, e_description, label)
  l_context = nce_context(f_context, e_context, label)
  fused = integrate(f_category, f_components, f_description, f_context)
  logits = head(fused)
  ce_loss = ce(logits, label)
}

train {
  optimizer = "adamw"
  lr = 0.001
  weight_decay = 0.05
  warmup_epochs = 2
  batch_size = 32
  views = {clips = 5, crops = 3}
}

stage pretrain {trains = ["proc_category", "proc_components", "proc_description", "proc_context", "nce_category", "nce_components", "nce_description", "nce_context"], losses = {l_category = 1.0, l_components = 1.0, l_description = 1.0, l_context = 1.0}, epochs = 20}
stage finetune {trains = ["integrate", "head"], losses = {ce_loss = 1.0}, epochs = 30}
