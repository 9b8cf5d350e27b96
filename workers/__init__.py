"""Processes: one Temporal worker per task queue (integration layer), and the `apeiro` command."""
