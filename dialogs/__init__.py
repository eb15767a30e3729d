"""Thin Bot Framework dialogs: each step prompts, reads a card action, or calls a service."""
