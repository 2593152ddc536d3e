"""The worker process: declared tasks, running attempts, claims, heartbeats, children."""
