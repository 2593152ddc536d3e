"""Settings: one frozen model, built in one place and passed down (no globals).

Every field has an environment twin ``RICOCHET_<FIELD>``; the CLI builds the
model from flags whose defaults come from those variables.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ricochet.contracts.limits import DEFAULT_LIMITS, KIB, MIB, Limits
from ricochet.workers.addresses import BrokerAddress, parse_addresses, tls_files

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"

GIB = 1024 * MIB
DEFAULT_STREAM_MAX_BYTES = 5 * GIB
"""The event log's size bound, beside its age: half of a 10 GiB broker volume (the
RabbitMQ cluster operator's default), so the quorum queues, the checkpoints and the
dead letters fit beside it with room to spare before the disk alarm stops publishers."""
DEFAULT_DEAD_LETTER_MAX_BYTES = 1 * GIB
"""``<ns>.dead`` keeps the newest dead letters up to this many body bytes (drop-head)."""
DEFAULT_DEAD_LETTER_BODY_BYTES = 64 * KIB
"""A body Ricochet dead-letters is cut to this; enough to see what the message was."""


def default_worker_id() -> str:
    """host:pid, so an event says which process on which host ran the attempt."""
    return f"{socket.gethostname()}:{os.getpid()}"


TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~+/-]{16,4096}=*")
"""RFC 6750's ``b64token``, at least 16 characters (``secrets.token_urlsafe(32)`` fits)."""
TOKEN_RULE = (
    "the projector token must be 16 to 4096 characters of A-Z a-z 0-9 - . _ ~ + /"
    " (then = padding), e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


def is_bearer_token(text: str) -> bool:
    return TOKEN_PATTERN.fullmatch(text) is not None


AGE_UNITS_S = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}


def age_seconds(age: str) -> float:
    """A RabbitMQ stream age ("7D", "12h") in seconds (a year is 365 days, a month 30)."""
    return float(int(age[:-1]) * AGE_UNITS_S[age[-1]])


class Settings(BaseModel):
    """Everything a Ricochet process needs to know about its broker and itself."""

    # hide_input_in_errors: a refused value would otherwise be echoed, amqp_url's password too.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    amqp_url: str = DEFAULT_AMQP_URL
    """One broker URL or several, comma-separated (format: ``ricochet.workers.addresses``)."""
    namespace: str = Field(default="ricochet", pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    concurrency: int = Field(default=8, ge=1, le=10_000)
    prefetch: int | None = Field(default=None, ge=1, le=65_535)
    delivery_limit: int = Field(default=5, ge=1)
    stream_max_age: str = Field(default="7D", pattern=r"^\d+[YMDhms]$")
    worker_id: str = Field(default_factory=default_worker_id)
    heartbeat_s: float = Field(default=1.0, gt=0, le=60)
    loss_window_s: float = Field(default=10.0, gt=0, le=3600)
    retry_recovery_s: float | None = Field(default=None, gt=0)
    orphan_after_s: float = Field(default=300.0, gt=0)
    checkpoint_s: float = Field(default=5.0, gt=0, le=3600)
    dedup_window_s: float | None = Field(default=None, gt=0)
    trigger_prefetch: int = Field(default=256, ge=1, le=65_535)
    # Prometheus metrics of a worker on this port (workers.observe); None: off, 0: any free port.
    metrics_port: int | None = Field(default=None, ge=0, le=65_535)
    # How long a worker or projector keeps trying its first connection (README "Settings"):
    # inf waits for the broker however long it takes, 0 not at all. One-shot commands and
    # clients never wait: they fail at once with one line saying why. Once connected, they
    # wait as long for the topology (``workers.amqp.declaring.until_topology``).
    startup_wait_s: float = Field(default=math.inf, ge=0)
    # Replication (README "Replication"): nodes per new quorum queue / stream; None = the
    # broker's default, every node. Fixed at creation: a re-declare with another value fails.
    quorum_group_size: int | None = Field(default=None, ge=1)
    stream_group_size: int | None = Field(default=None, ge=1)
    # The shared limits (contracts.limits): a deployment may lower them for its writers,
    # never raise them past what every reader accepts (the defaults).
    max_json_depth: int = Field(
        default=DEFAULT_LIMITS.max_json_depth, ge=1, le=DEFAULT_LIMITS.max_json_depth
    )
    max_args_bytes: int = Field(
        default=DEFAULT_LIMITS.max_args_bytes, ge=1, le=DEFAULT_LIMITS.max_args_bytes
    )
    max_result_bytes: int = Field(
        default=DEFAULT_LIMITS.max_result_bytes, ge=1, le=DEFAULT_LIMITS.max_result_bytes
    )
    max_trigger_bytes: int = Field(
        default=DEFAULT_LIMITS.max_trigger_bytes, ge=1, le=DEFAULT_LIMITS.max_trigger_bytes
    )
    max_heartbeat_bytes: int = Field(
        default=DEFAULT_LIMITS.max_heartbeat_bytes, ge=1, le=DEFAULT_LIMITS.max_heartbeat_bytes
    )
    max_message_bytes: int = Field(
        default=DEFAULT_LIMITS.max_message_bytes, ge=65_536, le=DEFAULT_LIMITS.max_message_bytes
    )
    # -- TLS (README "Run it safely", "TLS"): for amqps:// addresses. One context for every
    # connection (ricochet.workers.amqp.tls): TLS 1.2 or later, the broker's certificate
    # always checked against tls_ca_file (unset: the system's CAs), its host name too
    # unless tls_verify_hostname is false; a client certificate when tls_cert_file is set
    # (tls_key_file: its key, unless the same file holds both). The URL's ?cafile=,
    # ?certfile=, ?keyfile= count as these (``tls``), the same file or refused.
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify_hostname: bool = True

    # Trusted events (README "Trusted events"): the RabbitMQ users whose event and
    # checkpoint messages readers believe (their AMQP user_id); None believes every writer.
    event_writers: frozenset[str] | None = None

    @field_validator("event_writers", mode="before")
    @classmethod
    def _writers_listed(cls, value: Any) -> Any:
        """``RICOCHET_EVENT_WRITERS=a,b``; empty (or only spaces) means unset."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        names = [name.strip() for name in value.split(",")]
        if "" in names:
            raise ValueError(
                f"event_writers {value!r} has an empty user name: remove the stray comma"
            )
        return frozenset(names)

    # --- the projector's HTTP server (issue 13, README "The projector's HTTP server") ---
    # A bearer token every route but /health requires (None: no authentication), given
    # as itself or as a file holding it (a Kubernetes or compose secret); not both.
    # ``status`` and ``executions`` send it to the projector they ask. Never logged.
    projector_token: SecretStr | None = None
    projector_token_file: Path | None = None

    # Bounded storage (README "Bounded storage"). The two bounds are queue arguments, fixed
    # when the queue is created (like stream_max_age), so they have no flag: every process
    # that declares must give the same values. 0 leaves a bound out (queues made before).
    stream_max_bytes: int = Field(default=DEFAULT_STREAM_MAX_BYTES, ge=0)
    dead_letter_max_bytes: int = Field(default=DEFAULT_DEAD_LETTER_MAX_BYTES, ge=0)
    dead_letter_body_bytes: int = Field(default=DEFAULT_DEAD_LETTER_BODY_BYTES, ge=1)

    @property
    def limits(self) -> Limits:
        """The limits this process's writers keep to."""
        return Limits(
            max_json_depth=self.max_json_depth,
            max_args_bytes=self.max_args_bytes,
            max_result_bytes=self.max_result_bytes,
            max_trigger_bytes=self.max_trigger_bytes,
            max_heartbeat_bytes=self.max_heartbeat_bytes,
            max_message_bytes=self.max_message_bytes,
        )

    @field_validator("amqp_url")
    @classmethod
    def _addresses_parse(cls, value: str) -> str:
        """Refuse a bad address list now, with the item at fault, not at the first connect."""
        parse_addresses(value)
        return value.strip()

    @property
    def amqp_addresses(self) -> tuple[BrokerAddress, ...]:
        """The broker addresses to fail over among, in the order given."""
        return parse_addresses(self.amqp_url)

    @property
    def tls(self) -> dict[str, str | None]:
        """``tls_ca_file``, ``tls_cert_file`` and ``tls_key_file`` as they apply: each
        setting, or else the file the URL's query names for it."""
        given = {"tls_ca_file": self.tls_ca_file, "tls_cert_file": self.tls_cert_file}
        return tls_files(self.amqp_addresses, {**given, "tls_key_file": self.tls_key_file})

    @model_validator(mode="after")
    def _tls_files_agree(self) -> Settings:
        """A setting and a URL query naming different files: refused now, not at connect."""
        _ = self.tls
        return self

    @field_validator("projector_token")
    @classmethod
    def _token_is_a_bearer_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Refused without echoing it (the message names the rule, never the value)."""
        if value is not None and not is_bearer_token(value.get_secret_value()):
            raise ValueError(TOKEN_RULE)
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> Settings:
        if self.projector_token is not None and self.projector_token_file is not None:
            raise ValueError("give projector_token or projector_token_file, not both")
        return self

    @model_validator(mode="after")
    def _window_spans_heartbeats(self) -> Settings:
        if self.loss_window_s < 3 * self.heartbeat_s:
            raise ValueError(
                f"loss_window_s ({self.loss_window_s}) must be at least 3 heartbeats"
                f" ({3 * self.heartbeat_s}): one late heartbeat must not declare a worker lost"
            )
        return self

    @property
    def retry_recovery_bound_s(self) -> float:
        """How overdue a retry must be before the supervisor publishes it again: by
        default the loss window (a copy of one that did arrive never runs twice)."""
        return self.retry_recovery_s or self.loss_window_s

    @property
    def key_window_s(self) -> float:
        """How long an idempotency key is remembered: by default, as long as the log keeps
        the request that used it (the stream's retention)."""
        return self.dedup_window_s or age_seconds(self.stream_max_age)

    @property
    def work_prefetch(self) -> int:
        """Explicit prefetch for work queues: by default one message per execution slot."""
        return self.prefetch or self.concurrency

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``RICOCHET_*`` variables; explicit ``overrides`` win."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = f"RICOCHET_{name.upper()}"
            if key in source and source[key] != "":
                values[name] = source[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
