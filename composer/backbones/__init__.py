"""Backbone families; importing this package registers them (composer/backbones/registry.py)."""

from composer.backbones import chinese_clip, clip, dinov2, videomae, viclip  # noqa: F401
