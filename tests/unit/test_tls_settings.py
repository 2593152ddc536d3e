"""TLS settings (issue 13, item 3): the one context, the URL query of before, and the
words for each TLS failure. Pure rules and files; the handshakes themselves are in
``tests/integration/test_tls.py``, against a RabbitMQ node with a TLS listener."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiormq.exceptions
import click
import pytest
import trustme
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from ricochet.errors import AddressError, BrokerUnreachable
from ricochet.workers.addresses import parse_addresses
from ricochet.workers.amqp.causes import in_words
from ricochet.workers.amqp.tls import client_context
from ricochet.workers.cli.main import main
from ricochet.workers.cli.options import connection_options, settings_of
from ricochet.workers.settings import Settings

URL = "amqps://app:secret@rmq.example:5671/prod"


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a client certificate with its key, and a key that fits neither."""
    directory = tmp_path_factory.mktemp("pems")
    ca = trustme.CA()
    client = ca.issue_cert("client.example")
    other = ca.issue_cert("other.example")
    files = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key", "other_key")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client.private_key_pem.write_to_path(str(files["key"]))
    other.private_key_pem.write_to_path(str(files["other_key"]))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    files["encrypted_key"] = directory / "encrypted.pem"
    files["encrypted_key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return files


def settings(**given: Any) -> Settings:
    return Settings.model_validate({"amqp_url": URL, **given})


def refusal(**given: Any) -> str:
    with pytest.raises(BrokerUnreachable) as raised:
        client_context(settings(**given))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("cannot connect to amqps://app@rmq.example:5671/prod ")
    return message


# -- the context ------------------------------------------------------------------------


def test_the_context_demands_tls_12_and_a_checked_certificate_from_the_ca_given(
    pems: dict[str, Path],
) -> None:
    context = client_context(
        settings(
            tls_ca_file=str(pems["ca"]),
            tls_cert_file=str(pems["cert"]),
            tls_key_file=str(pems["key"]),
        )
    )

    assert context is not None
    assert ssl.TLSVersion.TLSv1_2 == context.minimum_version
    assert ssl.CERT_REQUIRED == context.verify_mode
    assert context.check_hostname
    assert 1 == len(context.get_ca_certs()), "the CA given, and none of the system's"


def test_without_a_ca_file_the_systems_cas_are_trusted() -> None:
    context = client_context(settings())

    assert context is not None
    assert context.cert_store_stats()["x509_ca"] == len(ssl.create_default_context().get_ca_certs())


def test_the_host_name_check_follows_its_setting_and_the_certificate_check_stays() -> None:
    context = client_context(settings(tls_verify_hostname=False))

    assert context is not None
    assert not context.check_hostname
    assert ssl.CERT_REQUIRED == context.verify_mode


def test_one_context_serves_every_connection_of_a_process(pems: dict[str, Path]) -> None:
    """Read once: the same settings give the same context object."""
    first = client_context(settings(tls_ca_file=str(pems["ca"])))

    assert first is client_context(settings(tls_ca_file=str(pems["ca"])))
    assert first is not client_context(settings())


def test_plain_amqp_with_no_tls_settings_has_no_context() -> None:
    assert client_context(Settings(amqp_url="amqp://guest:guest@localhost:5672/")) is None


@pytest.mark.parametrize(
    "given", [{"tls_ca_file": "/etc/ca.pem"}, {"tls_verify_hostname": False}], ids=str
)
def test_tls_settings_with_no_amqps_address_are_refused(given: dict[str, Any]) -> None:
    """Connecting unencrypted while the settings ask for TLS would hide a mistake."""
    plain = Settings.model_validate({"amqp_url": "amqp://guest:guest@localhost:5672/", **given})

    with pytest.raises(BrokerUnreachable, match="no address is amqps://: refusing"):
        client_context(plain)


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"

    message = refusal(tls_ca_file=str(missing))

    assert f"tls_ca_file '{missing}' cannot be used: no such file or directory" in message


def test_a_ca_file_that_is_no_certificate_is_named(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")

    assert f"tls_ca_file '{garbage}' cannot be used: " in refusal(tls_ca_file=str(garbage))


def test_a_key_that_does_not_fit_the_certificate_is_named(pems: dict[str, Path]) -> None:
    message = refusal(tls_cert_file=str(pems["cert"]), tls_key_file=str(pems["other_key"]))

    assert "tls_cert_file and tls_key_file (" in message
    assert "key values mismatch" in message


def test_an_encrypted_key_is_refused_never_asked_for(pems: dict[str, Path]) -> None:
    """OpenSSL would prompt on the terminal: a worker would hang at start."""
    message = refusal(tls_cert_file=str(pems["cert"]), tls_key_file=str(pems["encrypted_key"]))

    assert "is encrypted: give the key without a passphrase" in message


def test_a_key_without_its_certificate_is_refused(pems: dict[str, Path]) -> None:
    assert "tls_key_file set without tls_cert_file" in refusal(tls_key_file=str(pems["key"]))


# -- the URL query of before --------------------------------------------------------------


def test_the_query_files_count_as_the_settings() -> None:
    query = "?cafile=/q/ca.pem&certfile=/q/c.pem&keyfile=/q/k.pem&heartbeat=5"

    chosen = Settings(amqp_url=URL + query, tls_ca_file="/q/ca.pem").tls

    assert {
        "tls_ca_file": "/q/ca.pem",
        "tls_cert_file": "/q/c.pem",
        "tls_key_file": "/q/k.pem",
    } == chosen


def test_short_addresses_share_the_first_ones_query_files() -> None:
    chosen = Settings(amqp_url=f"{URL}?cafile=/q/ca.pem,rmq-2.example,rmq-3.example").tls

    assert "/q/ca.pem" == chosen["tls_ca_file"]


@pytest.mark.parametrize(
    ("url", "given"),
    [
        (f"{URL}?cafile=/q/ca.pem", {"tls_ca_file": "/other/ca.pem"}),
        (f"{URL}?cafile=/q/ca.pem,amqps://app:secret@rmq-2.example/prod?cafile=/x.pem", {}),
    ],
    ids=["setting and query", "two queries"],
)
def test_two_files_for_one_setting_are_refused(url: str, given: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="names another tls_ca_file in its query"):
        Settings.model_validate({"amqp_url": url, **given})


@pytest.mark.parametrize("parameter", ["no_verify_ssl=1", "capath=/etc/ssl", "cadata=AAAA"])
def test_the_query_tls_parameters_without_a_setting_are_refused(parameter: str) -> None:
    with pytest.raises(AddressError, match=f"has \\?{parameter.split('=')[0]}=, which Ricochet"):
        parse_addresses(f"{URL}?{parameter}")


def test_no_verify_ssl_0_asks_for_what_is_done_anyway() -> None:
    assert parse_addresses(f"{URL}?no_verify_ssl=0")


# -- the flags and variables --------------------------------------------------------------


def test_the_variables_set_the_settings() -> None:
    env = {
        "RICOCHET_AMQP_URL": URL,
        "RICOCHET_TLS_CA_FILE": "/e/ca.pem",
        "RICOCHET_TLS_VERIFY_HOSTNAME": "false",
    }

    read = Settings.from_env(env)

    assert ("/e/ca.pem", False) == (read.tls_ca_file, read.tls_verify_hostname)


@pytest.fixture
def probe() -> Iterator[dict[str, Any]]:
    """A command that records the TLS settings the CLI built for it."""
    seen: dict[str, Any] = {}

    @click.command("probe")
    @connection_options
    @click.pass_context
    def command(ctx: click.Context) -> None:
        built = settings_of(ctx)
        seen.update(
            ca=built.tls_ca_file, cert=built.tls_cert_file, verify=built.tls_verify_hostname
        )

    main.add_command(command)
    try:
        yield seen
    finally:
        del main.commands["probe"]


def test_the_flags_work_before_and_after_the_command(probe: dict[str, Any]) -> None:
    done = CliRunner().invoke(
        main,
        ["--tls-ca-file", "/b/ca.pem", "probe", "--tls-cert-file", "/a/c.pem"],
        env={"RICOCHET_AMQP_URL": URL, "RICOCHET_TLS_VERIFY_HOSTNAME": "false"},
    )

    assert 0 == done.exit_code, done.output
    assert {"ca": "/b/ca.pem", "cert": "/a/c.pem", "verify": False} == probe


def test_the_host_name_flag_after_the_command_turns_the_check_off(probe: dict[str, Any]) -> None:
    done = CliRunner().invoke(
        main, ["probe", "--no-tls-verify-hostname"], env={"RICOCHET_AMQP_URL": URL}
    )

    assert 0 == done.exit_code, done.output
    assert probe["verify"] is False


# -- the words ----------------------------------------------------------------------------

TLS_ADDRESS = parse_addresses(URL)[0]


def verify_error(message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.verify_message = message
    return error


def alert(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    error.reason = reason
    return error


WORDS = {
    "unknown CA": (
        verify_error("unable to get local issuer certificate"),
        "TLS certificate not accepted: unable to get local issuer certificate (the broker's"
        " certificate must be signed by a CA in tls_ca_file",
    ),
    "host name": (
        verify_error("Hostname mismatch, certificate is not valid for 'rmq.example'."),
        'TLS certificate not accepted: the broker\'s certificate is not valid for "rmq.example"'
        " (Hostname mismatch, certificate is not valid for 'rmq.example'); connect by a name"
        " the certificate lists, or set tls_verify_hostname=false",
    ),
    "client certificate required": (
        alert("TLSV13_ALERT_CERTIFICATE_REQUIRED"),
        "TLS handshake failed: tlsv13 alert certificate required (the broker requires a client"
        " certificate: set tls_cert_file and tls_key_file)",
    ),
    "client certificate refused": (
        alert("TLSV1_ALERT_UNKNOWN_CA"),
        "TLS handshake failed: tlsv1 alert unknown ca (the broker refused the client"
        " certificate: is it signed by a CA the broker trusts?)",
    ),
    "cut after the handshake": (
        aiormq.exceptions.AMQPConnectionError(
            "Server connection reset: ConnectionResetError(104, 'Connection reset by peer')"
        ),
        "TLS handshake failed: the server closed the connection before AMQP began",
    ),
}


@pytest.mark.parametrize("case", sorted(WORDS))
def test_each_tls_failure_is_named_in_words(case: str) -> None:
    error, expected = WORDS[case]

    words = in_words(error, TLS_ADDRESS)

    assert words.startswith(expected), words
    assert "secret" not in words


def test_a_live_tls_connection_reset_is_not_taken_for_a_refused_handshake() -> None:
    error, _ = WORDS["cut after the handshake"]

    words = in_words(error, TLS_ADDRESS, connecting=False)

    assert "TLS" not in words
