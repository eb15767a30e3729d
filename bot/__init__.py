"""Guichet: a Microsoft Teams bot for booking video appointments with a counselor."""
