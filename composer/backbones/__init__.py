"""Backbone families; importing this package registers their declarations (composer/backbones/families/), which
import no torch; each family's modules are imported on its first build (composer/backbones/registry.py)."""

from composer.backbones import families  # noqa: F401
