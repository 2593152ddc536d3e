"""Submitting executions, dispatching their first attempt, and waiting for them to end."""
