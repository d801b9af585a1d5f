"""Editor support: the JSON Schema of a YAML spec and a language server (docs/editors.md)."""
