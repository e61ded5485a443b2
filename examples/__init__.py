"""Runnable greensio examples (``python -m examples.chat`` from the repository root)."""
