"""The component kinds; importing this package registers every one of them (registry.py)."""

from composer.components import tap  # noqa: F401
from composer.components.adapters import bottleneck, dora, lora, msta, st_adapter, temporal_embedding  # noqa: F401
from composer.components.fusion import (  # noqa: F401
    feature_processor,
    frame_tokens,
    fusion_transformer,
    integration,
    mean,
    temporal_mean,
    temporal_transformer,
    word_query_pooling,
)
from composer.components.heads import cosine_logits, linear_head, score_fusion  # noqa: F401
from composer.components.losses import cross_entropy, description_consistency, infonce  # noqa: F401
from composer.components.prompts import temporal_prompts, text_context, visual_prompts  # noqa: F401
from composer.components.side import tds  # noqa: F401
from composer.components.text import class_texts, text_template  # noqa: F401
from composer.components.video import center_frame  # noqa: F401
