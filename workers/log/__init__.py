"""The event log: recording events (group commit), reading the stream, replay selection."""
