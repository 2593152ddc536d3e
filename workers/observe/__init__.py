"""What operators watch: Prometheus metrics and OpenTelemetry traces.

Both are off unless asked for, and neither writes anything to the log: metrics
count what the workers and the projector already did, traces follow a request
from whoever triggered it into every attempt.
"""
