"""The component kinds, each by name with the module that declares it. A spec imports only the declarations of
the kinds it names (registry.get_kind); `registry.own_kinds()` imports every one (tests/test_declared.py holds
this table to what the modules register)."""

DECLARED = {
    "tap": "composer.components.tap",
    "bottleneck_adapter": "composer.components.adapters.bottleneck",
    "lora": "composer.components.adapters.lora",
    "dora": "composer.components.adapters.dora",
    "msta": "composer.components.adapters.msta",
    "st_adapter": "composer.components.adapters.st_adapter",
    "temporal_embedding": "composer.components.adapters.temporal_embedding",
    "feature_processor": "composer.components.fusion.feature_processor",
    "frame_tokens": "composer.components.fusion.frame_tokens",
    "fusion_transformer": "composer.components.fusion.fusion_transformer",
    "integration": "composer.components.fusion.integration",
    "mean": "composer.components.fusion.mean",
    "temporal_mean": "composer.components.fusion.temporal_mean",
    "temporal_transformer": "composer.components.fusion.temporal_transformer",
    "word_query_pooling": "composer.components.fusion.word_query_pooling",
    "cosine_logits": "composer.components.heads.cosine_logits",
    "linear_head": "composer.components.heads.linear_head",
    "score_fusion": "composer.components.heads.score_fusion",
    "cross_entropy": "composer.components.losses.cross_entropy",
    "description_consistency": "composer.components.losses.description_consistency",
    "infonce": "composer.components.losses.infonce",
    "temporal_prompts": "composer.components.prompts.temporal_prompts",
    "text_context": "composer.components.prompts.text_context",
    "visual_prompts": "composer.components.prompts.visual_prompts",
    "tds_side_network": "composer.components.side.tds",
    "class_texts": "composer.components.text.class_texts",
    "text_template": "composer.components.text.text_template",
    "center_frame": "composer.components.video.center_frame",
}
