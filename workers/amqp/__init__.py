"""Talking to RabbitMQ: addresses, fail-over connections, channels, publishing, topology."""
