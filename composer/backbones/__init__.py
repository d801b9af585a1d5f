"""Backbone families. The registry (composer/backbones/registry.py) imports a family's declaration
(composer/backbones/families/, no torch) when a spec names it, and its modules on its first build."""
