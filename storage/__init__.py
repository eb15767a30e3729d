"""Persistence: SQLAlchemy models, repositories, unit of work, bot state, migrations."""
