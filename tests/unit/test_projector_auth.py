"""The projector's bearer token (issue 13, item 4), on an in-process server over an
empty fold: who is let in, what a refusal says, the pages' cookie, and where the
token comes from."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from pydantic import SecretStr
from structlog.testing import capture_logs

from ricochet.engine import Projection
from ricochet.errors import TokenFileError
from ricochet.workers.cli import running
from ricochet.workers.cli.main import main
from ricochet.workers.read import api, auth
from ricochet.workers.read import web as pages
from ricochet.workers.read.http import DEFAULT_HOST, is_loopback, listen_address
from ricochet.workers.read.projector import Projector
from ricochet.workers.read.provenance import Provenance
from ricochet.workers.settings import Settings

TOKEN = secrets.token_urlsafe(32)
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _app(token: str | None) -> web.Application:
    """The API, the pages and the session route, guarded as the projector's are."""
    provenance = Provenance("amqp://guest@localhost:5672/", "/", "ricochet")
    application = api.app(provenance, Projection, lambda: {}, middlewares=[auth.token_guard(token)])
    pages.add_pages(application, Projection)
    auth.add_session(application, token)
    return application


@pytest.fixture
async def guarded() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(_app(TOKEN))) as client:
        yield client


async def test_without_a_token_set_everything_is_open() -> None:
    async with TestClient(TestServer(_app(None))) as client:
        for path in ("/health", "/executions", "/ui", "/ui/static/live.js"):
            assert 200 == (await client.get(path)).status, path
        session = await client.get("/ui/session")
        assert (204, None) == (session.status, session.headers.get("Set-Cookie"))


async def test_health_is_open_and_the_api_asks_for_the_token(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    assert 200 == (await guarded.get("/health")).status

    refused = await guarded.get("/executions")
    assert 401 == refused.status
    assert 'Bearer realm="ricochet projector"' == refused.headers["WWW-Authenticate"]
    assert "bearer token" in (await refused.json())["error"]

    wrong = await guarded.get("/executions", headers={"Authorization": "Bearer nope"})
    assert wrong.headers["WWW-Authenticate"].endswith('error="invalid_token"')
    assert "nope" not in await wrong.text()

    allowed = await guarded.get("/executions", headers={"Authorization": f"Bearer {TOKEN}"})
    assert 200 == allowed.status


async def test_unknown_paths_are_refused_before_they_are_looked_up(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    """A caller without the token learns nothing of which routes exist."""
    assert 401 == (await guarded.get("/no/such/route")).status
    assert 401 == (await guarded.post("/executions")).status


async def test_a_browser_gets_a_page_that_asks_for_the_token(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    page = await guarded.get("/ui/executions/e1", headers=HTML)

    assert (401, "text/html") == (page.status, page.content_type)
    body = await page.text()
    assert "#token=" not in body or "location.hash" in body
    assert "/ui/session" in body
    assert TOKEN not in body


async def test_the_session_cookie_opens_the_pages_and_only_them(
    guarded: TestClient[web.Request, web.Application],
) -> None:
    """Shown the token once, /ui/session sets an HttpOnly, SameSite=Strict cookie for /ui
    that is not the token; with it the pages answer, the API does not."""
    started = await guarded.get("/ui/session", headers={"Authorization": f"Bearer {TOKEN}"})
    cookie = started.cookies[auth.COOKIE]
    guarded.session.cookie_jar.clear()  # only the Cookie headers below are sent

    assert 204 == started.status
    assert (True, "Strict", "/ui") == (
        bool(cookie["httponly"]),
        cookie["samesite"],
        cookie["path"],
    )
    assert cookie.value != TOKEN
    assert TOKEN not in started.headers["Set-Cookie"]
    with_cookie = {"Cookie": f"{auth.COOKIE}={cookie.value}"}
    assert 200 == (await guarded.get("/ui", headers=with_cookie)).status
    assert 200 == (await guarded.get("/ui/static/timeline.css", headers=with_cookie)).status
    assert 401 == (await guarded.get("/executions", headers=with_cookie)).status
    flipped = "1" if cookie.value[-1] == "0" else "0"
    forged = {"Cookie": f"{auth.COOKIE}={cookie.value[:-1]}{flipped}"}
    assert 401 == (await guarded.get("/ui", headers=forged)).status


def test_the_token_comes_from_the_setting_or_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(f"  {TOKEN}\n")

    assert TOKEN == auth.projector_token(Settings(projector_token=SecretStr(TOKEN)))
    assert TOKEN == auth.projector_token(Settings(projector_token_file=secret))
    assert auth.projector_token(Settings()) is None


def test_a_bad_token_file_says_which_and_why_never_what_it_holds(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(TokenFileError, match=f"{missing}: No such file"):
        auth.projector_token(Settings(projector_token_file=missing))
    weak = tmp_path / "weak"
    weak.write_text("hunter2 hunter2\n")
    with pytest.raises(TokenFileError) as refused:
        auth.projector_token(Settings(projector_token_file=weak))
    assert "hunter2" not in str(refused.value)


def test_a_bad_token_setting_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="16 to 4096 characters") as refused:
        Settings.model_validate({"projector_token": "short secret"})
    assert "short secret" not in str(refused.value)
    with pytest.raises(ValueError, match="not both"):
        Settings(projector_token=SecretStr(TOKEN), projector_token_file=Path("/x"))
    assert TOKEN not in repr(Settings(projector_token=SecretStr(TOKEN)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        (":8765", (DEFAULT_HOST, 8765)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert expected == listen_address(text)


@pytest.mark.parametrize("text", ["8765", "host:", "host:²", "host:65536", "host:-1"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        listen_address(text)


def test_loopback_is_told_from_the_rest() -> None:
    assert [True, True, True, False, False, False] == [
        is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::", "example.com")
    ]


def test_the_projector_serves_on_loopback_unless_told_otherwise() -> None:
    command = main.commands["projector"]
    http = next(p for p in command.params if p.name == "http")

    assert "127.0.0.1:8765" == http.default


def test_a_bad_http_address_stops_the_projector_before_it_starts() -> None:
    result = CliRunner().invoke(main, ["projector", "--http", "localhost:²"])

    assert 2 == result.exit_code
    assert "is not HOST:PORT" in result.output


def test_an_unreadable_token_file_stops_the_projector_before_it_starts(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent")
    result = CliRunner().invoke(main, ["projector", "--projector-token-file", missing])

    assert 2 == result.exit_code
    assert "No such file" in result.output


async def test_serving_beyond_loopback_without_a_token_warns(tmp_path: Path) -> None:
    """Listening on every interface with no token logs a warning saying how to set one;
    loopback, or any address with a token, does not. The token is never logged."""
    projector = Projector(Settings(), tmp_path / "projection.sqlite3")
    with capture_logs() as logs:
        for address, token in (("0.0.0.0:0", None), ("127.0.0.1:0", None), (":0", TOKEN)):
            runner = await running._serve(projector, address, token)
            await runner.cleanup()

    events = [(entry["event"], entry.get("host")) for entry in logs]
    assert [
        ("projector.http", None),
        ("projector.http_without_token", "0.0.0.0"),
        ("projector.http", None),
        ("projector.http", None),
    ] == events
    assert TOKEN not in repr(logs)
    assert [False, False, True] == [e["token"] for e in logs if e["event"] == "projector.http"]
