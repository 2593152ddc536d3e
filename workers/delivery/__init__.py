"""After an attempt's events are recorded: acking, retrying or dead-lettering its delivery."""
