"""Ricochet's I/O layer, one sub-package per role.

- ``amqp``: broker addresses, fail-over connections, channels and publishing, topology.
- ``log``: the event log: recording (group commit), reading, replay selection.
- ``runtime``: the worker process: declared tasks, running an attempt, claims, heartbeats.
- ``delivery``: what happens to a work delivery once its events are recorded (ack, retry,
  dead-letter).
- ``supervision``: the supervisor: trigger intake, lost workers, recovery, checkpoints.
- ``client``: submitting executions and waiting for them.
- ``read``: the read side: projector, its store, the HTTP API, the timeline.
- ``cli``: the ``ricochet`` command.

``settings``, ``logs``, ``clock`` and ``end_of_turn`` are shared by all of them. What users
import is re-exported by ``ricochet`` itself.
"""
