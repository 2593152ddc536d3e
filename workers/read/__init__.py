"""The read side: the projector, its store, the HTTP API and the terminal timeline."""
