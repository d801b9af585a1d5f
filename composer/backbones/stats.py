"""The per-channel pixel statistics (mean, std of [0, 1] RGB) pretrained models were trained with.

One home, because a backbone normalises with them and TDS-CLIP's side network must normalise its own
copy of the frames exactly as the backbone beside it does: a digit off in one copy would shift every
input without an error.
"""

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # DINOv2, ViCLIP, VideoMAE
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI's CLIP, and open_clip's default
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
