"""Beacon's machine learning: one BERT encoder with an entity head and a sentiment head.

This package imports torch and transformers only; never ``bot`` or ``jobs``.
"""
