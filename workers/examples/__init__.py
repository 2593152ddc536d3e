"""Example tasks used by the demo (``ricochet worker ricochet.workers.examples.flaky``)."""
