"""The declarations of composer's backbone families: sizes, towers and their shapes per size, as data, and the
checks a spec's backbone gets before anything is built. Importing this package registers them
(composer/backbones/registry.py); none of it imports torch. Each family's modules (the nn.Module code) live in
composer/backbones/<family>.py, which its declaration names and the registry imports on the first build."""

from composer.backbones.families import chinese_clip, clip, dinov2, videomae, viclip  # noqa: F401
