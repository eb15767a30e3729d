"""The Teams-channel stand-in: what plays Microsoft Teams against a running Guichet bot over real HTTP.

A developer tool, not part of the bot: `guichet chat` (the terminal client), the tests (tests/harness.py)
and the benchmarks (bench/) share it, so that there is one idea of what Teams sends and receives.

- `activities`: the activities Teams posts to a bot (messages, card submits, invokes, installs) and how
  Teams reads a bot's answer to an invoke.
- `connector`: the Bot Connector stand-in, the `serviceUrl` that receives the bot's messages; it
  records them, can fail on purpose and waits for proactive ones.
- `markdown`, `card_inputs`, `card_render`: cards and Teams markdown as terminal text, card inputs
  validated and submitted like the card renderers do.
- `session`, `profile`, `terminal`: the chat itself (`guichet chat`).
"""
