"""The declarations of composer's backbone families: sizes, towers and their shapes per size, as data, and the
checks a spec's backbone gets before anything is built. Each module registers its family when imported
(composer/backbones/registry.py imports them by the table below, as the component registry does its kinds,
so no import runs back up); none of it imports torch. Each family's modules (the nn.Module code) live in
composer/backbones/<family>.py, which its declaration names and the registry imports on the first build."""

DECLARED = {  # in the order `composer kinds` and docs/components.md list them
    "chinese_clip": "composer.backbones.families.chinese_clip",
    "clip": "composer.backbones.families.clip",
    "dinov2": "composer.backbones.families.dinov2",
    "videomae": "composer.backbones.families.videomae",
    "viclip": "composer.backbones.families.viclip",
}
