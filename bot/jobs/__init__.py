"""The bot's own work: a durable job runner (bot.jobs.runner) and one handler per job kind.

One job, end to end: the runner claims a due job under a lease → its handler asks one service
what to do and builds the card → the Notifier sends it to the stored conversation (rate limiter,
retries) → the job is completed in the same transaction that records what was sent.
"""
