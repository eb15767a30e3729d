"""Adaptive Card builders (pure functions returning dicts) and the message catalogs."""
