"""Use cases over a unit of work: consent, booking, privacy, jobs."""
