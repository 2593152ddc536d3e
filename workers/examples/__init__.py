"""Example tasks used by the demo (``ricochet worker workers.examples.flaky``)."""
