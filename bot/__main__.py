"""`python -m bot` is the `guichet` command."""

from bot.cli import main

raise SystemExit(main())
