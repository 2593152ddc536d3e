"""``RICOCHET_AMQP_URL`` as a list of broker addresses: what is read, and what is refused."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ricochet.errors import AddressError
from ricochet.workers.addresses import BrokerAddress, masked, parse_addresses
from ricochet.workers.amqp.failover import FailoverConnection, masked_error
from ricochet.workers.cli.main import main
from ricochet.workers.settings import DEFAULT_AMQP_URL, Settings

SECRET = "s3cr3t-pw"


def nodes(text: str) -> list[str]:
    return [address.node for address in parse_addresses(text)]


def test_one_url_is_one_address() -> None:
    (address,) = parse_addresses(DEFAULT_AMQP_URL)
    assert (address.scheme, address.host, address.port, address.vhost) == (
        "amqp",
        "localhost",
        5672,
        "/",
    )
    assert address.url == DEFAULT_AMQP_URL


def test_short_items_take_scheme_credentials_vhost_and_query_from_the_first() -> None:
    text = f"amqps://app:{SECRET}@n1.example:5671/prod?heartbeat=30, n2.example ,n3.example:6000"
    first, second, third = parse_addresses(text)
    assert second.url == f"amqps://app:{SECRET}@n2.example/prod?heartbeat=30"
    assert third.url == f"amqps://app:{SECRET}@n3.example:6000/prod?heartbeat=30"
    assert [a.port for a in (first, second, third)] == [5671, 5671, 6000]
    assert {a.vhost for a in (first, second, third)} == {"prod"}


def test_full_urls_may_follow_the_first() -> None:
    text = f"amqp://a:{SECRET}@n1/v,amqp://a:other@n2:5673/v"
    assert nodes(text) == ["n1:5672", "n2:5673"]
    assert parse_addresses(text)[1].url == "amqp://a:other@n2:5673/v"


def test_vhost_is_read_like_aiormq_reads_it() -> None:
    assert parse_addresses("amqp://h")[0].vhost == "/"
    assert parse_addresses("amqp://h/%2F")[0].vhost == "/"
    assert parse_addresses("amqp://h/a%2Fb")[0].vhost == "a/b"


def test_ipv6_hosts() -> None:
    assert nodes("amqp://g:g@[::1]:5672/,[fe80::2]:5673") == ["[::1]:5672", "[fe80::2]:5673"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("n1:5672,n2:5672", "address 1 of 2 ('n1:5672') is not an amqp:// or amqps:// URL"),
        ("http://h/", "is not an amqp:// or amqps:// URL"),
        ("amqp://g:g@h/,", "address 2 of 2 ('') is empty"),
        ("amqp://g:g@h/,,h2", "address 2 of 3 ('') is empty"),
        ("amqp://g:g@h:99999/", "port that is not a number"),
        ("amqp://g:g@h:abc/", "port that is not a number"),
        ("amqp://g:g@h/,h2:x", "address 2 of 2 ('h2:x') has a port that is not a number"),
        ("amqp://g:g@h/,h2/other", "neither a full amqp:// URL nor host[:port]"),
        ("amqp://g:g@h/,u:p@h2", "neither a full amqp:// URL nor host[:port]"),
        ("amqp://g:g@:5672/", "names no host"),
        ("amqp://g:g@h:0/", "port 0"),
        ("amqp://g:g@h/a,amqp://g:g@h2/b", "several vhosts ('a', 'b')"),
        ("amqp://a:x@h/,amqp://b:y@h2/", "several users ('a', 'b')"),
        ("amqp://h/,amqp://b:y@h2/", "several users ('b', 'guest')"),
        ("amqp://g:g@h/,H:5672", "address 2 (h:5672) is given twice"),
    ],
)
def test_bad_lists_are_refused_naming_the_item(text: str, says: str) -> None:
    with pytest.raises(AddressError, match="RICOCHET_AMQP_URL") as raised:
        parse_addresses(text)
    assert says in str(raised.value)


def test_errors_and_reprs_never_show_the_password() -> None:
    with pytest.raises(AddressError) as raised:
        parse_addresses(f"amqp://app:{SECRET}@h:99999/")
    assert SECRET not in str(raised.value)
    assert "app:******@h:99999" in str(raised.value)
    address = parse_addresses(f"amqp://app:{SECRET}@h/")[0]
    assert SECRET not in repr(address)
    assert SECRET not in address.label
    assert masked(f"amqp://app:{SECRET}@h/") == "amqp://app:******@h/"
    assert SECRET not in masked_error(ConnectionError(f"to {address.url}"), address)


def test_settings_refuse_a_bad_list_at_construction_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(amqp_url=f"amqp://app:{SECRET}@h1/,h2/x")
    assert "address 2 of 2 ('h2/x')" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_settings_from_env_read_the_list() -> None:
    settings = Settings.from_env({"RICOCHET_AMQP_URL": "amqp://g:g@n1:5681/v,n2:5682,n3:5683"})
    assert [a.node for a in settings.amqp_addresses] == ["n1:5681", "n2:5682", "n3:5683"]


def test_a_connection_needs_an_address() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FailoverConnection((), "test")


def test_addresses_compare_by_value() -> None:
    one = parse_addresses("amqp://g:g@h/")[0]
    assert one == BrokerAddress(url="amqp://g:g@h/", scheme="amqp", host="h", port=5672, vhost="/")


def test_the_cli_refuses_a_bad_list_before_starting_anything() -> None:
    result = CliRunner().invoke(main, ["--amqp-url", f"amqp://app:{SECRET}@h1/,h2/x", "topology"])
    assert result.exit_code == 2
    assert "Invalid value for --amqp-url" in result.output
    assert "address 2 of 2 ('h2/x')" in result.output
    assert SECRET not in result.output
