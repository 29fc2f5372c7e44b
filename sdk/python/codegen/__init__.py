"""The SDK generator's parts (``sdk/python/generate.py`` runs them)."""
