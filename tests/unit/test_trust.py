"""Trusted events, without a broker: which ``user_id`` a reader believes, how a dropped
message is counted, which user a writer names, and how the setting is read."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from yarl import URL

from ricochet.engine.trust import MISSING_USER_ID, NOT_A_WRITER, distrust
from ricochet.workers.amqp.trust import EventGate, connection_gate, connection_writer
from ricochet.workers.cli.main import main
from ricochet.workers.settings import Settings

WRITERS = frozenset({"ricochet-worker", "ricochet-client"})


@pytest.mark.parametrize("user_id", [None, "", "guest", "ricochet-worker", "anyone"])
def test_no_writers_given_believes_every_message(user_id: str | None) -> None:
    """The default: a single-user setup works without configuring anything."""
    assert distrust(frozenset(), user_id) is None


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [
        ("ricochet-worker", None),
        ("ricochet-client", None),
        (None, MISSING_USER_ID),
        ("", MISSING_USER_ID),
        ("ricochet-trigger-publisher", NOT_A_WRITER),
        ("Ricochet-Worker", NOT_A_WRITER),  # RabbitMQ user names are case-sensitive
        ("ricochet-worker ", NOT_A_WRITER),
    ],
)
def test_with_writers_only_theirs_are_believed(user_id: str | None, reason: str | None) -> None:
    assert reason == distrust(WRITERS, user_id)


def test_a_refused_message_is_counted_once_however_many_readers_meet_it() -> None:
    """Given a gate for two writers,
    when four readers meet one forged message and one reader a message without user_id,
    then each message is counted once, by stream and reason, and good ones not at all."""
    gate = EventGate(WRITERS)

    reasons = [gate.refuses("ns.events", 7, "rogue") for _ in range(4)]
    missing = gate.refuses("ns.checkpoints", 7, None)
    believed = gate.refuses("ns.events", 8, "ricochet-worker")

    assert [NOT_A_WRITER] * 4 == reasons
    assert (MISSING_USER_ID, None) == (missing, believed)
    assert {("ns.events", NOT_A_WRITER): 1, ("ns.checkpoints", MISSING_USER_ID): 1} == dict(
        gate.dropped
    )


def test_connections_not_made_by_ricochet_believe_everything() -> None:
    assert connection_gate(object()).refuses("ns.events", 1, None) is None


class _Connection:
    def __init__(self, url: str) -> None:
        self.url = URL(url)


@pytest.mark.parametrize(
    ("url", "writer"),
    [
        ("amqp://app:secret@h/v", "app"),
        ("amqp://h/", "guest"),  # aiormq logs in as guest when the URL names nobody
        ("amqp://us%40er:pw@h/", "us@er"),
        ("amqps://cn-name@h/?auth=external", "cn-name"),
        ("amqps://h/?auth=EXTERNAL", None),  # the certificate's user: unknown here
    ],
)
def test_the_writer_is_the_user_the_connection_logs_in_as(url: str, writer: str | None) -> None:
    assert writer == connection_writer(_Connection(url))


@pytest.mark.parametrize(
    ("given", "writers"),
    [
        ("a", frozenset({"a"})),
        (" a , b ", frozenset({"a", "b"})),
        ("   ", None),
        (None, None),
    ],
)
def test_the_setting_is_a_comma_separated_list(
    given: str | None, writers: frozenset[str] | None
) -> None:
    assert writers == Settings.model_validate({"event_writers": given}).event_writers


def test_a_stray_comma_is_refused_not_read_as_a_user() -> None:
    with pytest.raises(ValueError, match="empty user name"):
        Settings.model_validate({"event_writers": "a,,b"})


def test_the_environment_and_the_flag_set_it_on_every_command() -> None:
    assert frozenset({"x", "y"}) == (
        Settings.from_env({"RICOCHET_EVENT_WRITERS": "x,y"}).event_writers
    )
    runner = CliRunner()
    after = runner.invoke(main, ["replay", "--event-writers", "a,,b"])
    before = runner.invoke(main, ["--event-writers", "a,,b", "topology"])
    for result in (after, before):
        assert 2 == result.exit_code
        assert "empty user name" in result.output
