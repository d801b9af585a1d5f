"""The component kinds; importing this package registers every one of them (registry.py)."""

from composer.components import tap  # noqa: F401
from composer.components.adapters import bottleneck, dora, lora  # noqa: F401
from composer.components.fusion import temporal_mean, temporal_transformer  # noqa: F401
from composer.components.heads import cosine_logits, linear_head  # noqa: F401
from composer.components.losses import cross_entropy, infonce  # noqa: F401
from composer.components.prompts import text_context, visual_prompts  # noqa: F401
from composer.components.text import text_template  # noqa: F401
