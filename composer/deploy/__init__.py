"""A trained spec put to use: predictions on videos (predict.py) and inference files or PEFT adapters (export.py)."""
