"""The projector's optional bearer token: every route but ``/health`` asks for it.

The projector serves arguments, results and tracebacks, so once it listens
beyond loopback (a container, a pod) something must stand at the door. A
static bearer token (``projector_token`` or ``projector_token_file``) is what
Prometheus, curl and ``ricochet status`` can all send; it is compared in
constant time and never logged. ``/health`` stays open for liveness probes and
says nothing an execution holds.

A browser cannot add a header to a link it follows, so the pages under
``/ui`` also take a session cookie: a request for a page without either
answers 401 with a small page whose script reads the token from the URL's
``#token=`` fragment (never sent to a server, and removed from the address
bar) or from a form, shows it to ``/ui/session`` in the header, and gets an
``HttpOnly``, ``SameSite=Strict`` cookie for ``/ui`` in return. The cookie
holds an HMAC of the token, not the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from ricochet.errors import TokenFileError
from ricochet.workers.settings import TOKEN_RULE, Settings, is_bearer_token

OPEN_PATHS = frozenset({"/health"})
PAGES = "/ui"
SESSION_PATH = "/ui/session"
COOKIE = "ricochet_ui_session"
REALM = "ricochet projector"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def projector_token(settings: Settings) -> str | None:
    """The token, from the setting or the file (read once, its surrounding blanks dropped)."""
    if settings.projector_token is not None:
        return settings.projector_token.get_secret_value()
    path = settings.projector_token_file
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise TokenFileError(f"projector_token_file {path}: {reason}") from None
    if not is_bearer_token(token):
        raise TokenFileError(f"projector_token_file {path}: {TOKEN_RULE}")
    return token


def _bytes(text: str) -> bytes:
    """Any header text as bytes (``compare_digest`` takes ASCII ``str`` only)."""
    return text.encode("utf-8", "surrogateescape")


def session_value(token: str) -> str:
    """What the pages' cookie holds: derived from the token, so the cookie is not it."""
    return hmac.new(_bytes(token), b"ricochet projector ui session", hashlib.sha256).hexdigest()


def _presented(request: web.Request) -> str | None:
    """The bearer credentials of the request's ``Authorization`` header, if any."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _allowed(request: web.Request, token: str, session: str) -> bool:
    presented = _presented(request)
    if presented is not None:
        return hmac.compare_digest(_bytes(presented), _bytes(token))
    cookie = request.cookies.get(COOKIE)
    if cookie is not None and _under_pages(request.path):
        return hmac.compare_digest(_bytes(cookie), _bytes(session))
    return False


def _under_pages(path: str) -> bool:
    return path == PAGES or path.startswith(f"{PAGES}/")


def token_guard(token: str | None) -> Middleware:
    """A middleware letting through what carries ``token`` (everything, when it is None)."""
    session = session_value(token) if token is not None else ""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is None or request.path in OPEN_PATHS or _allowed(request, token, session):
            return await handler(request)
        return refused(request)

    return guard


def refused(request: web.Request) -> web.Response:
    """401 and ``WWW-Authenticate: Bearer`` (RFC 6750); a page asks a browser for the token."""
    challenge = f'Bearer realm="{REALM}"'
    if _presented(request) is not None:
        challenge += ', error="invalid_token"'
    headers = {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
    if _under_pages(request.path) and "text/html" in request.headers.get("Accept", ""):
        return web.Response(
            status=401, text=LOGIN_PAGE, content_type="text/html", charset="utf-8", headers=headers
        )
    return web.json_response(
        {"error": "this projector asks for a bearer token (Authorization: Bearer <token>)"},
        status=401,
        headers=headers,
    )


def add_session(application: web.Application, token: str | None) -> None:
    """``GET /ui/session``: with the token in the header (the guard checked it), the
    pages' cookie; without a token configured, nothing to do."""

    async def start(request: web.Request) -> web.Response:
        response = web.Response(status=204, headers={"Cache-Control": "no-store"})
        if token is not None:
            response.set_cookie(
                COOKIE,
                session_value(token),
                path=PAGES,
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
        return response

    application.router.add_get(SESSION_PATH, start)


LOGIN_PAGE = """<!doctype html><html lang=en><head><meta charset=utf-8>
<title>Token · Ricochet</title></head><body>
<h1>This projector asks for its token</h1>
<form id=login><label>token <input id=token type=password autocomplete=off></label>
<button>open</button></form><p id=refused hidden>That token was refused.</p>
<script>
(function () {
  "use strict";
  function refused() { document.getElementById("refused").hidden = false; }
  function open(token) {
    fetch("/ui/session", {
      headers: { "Authorization": "Bearer " + token }, cache: "no-store", credentials: "same-origin"
    }).then(function (response) {
      if (response.ok) { window.location.reload(); } else { refused(); }
    }).catch(refused);
  }
  var given = new URLSearchParams(window.location.hash.slice(1)).get("token");
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  if (given) { open(given); }
  document.getElementById("login").addEventListener("submit", function (event) {
    event.preventDefault();
    open(document.getElementById("token").value.trim());
  });
})();
</script></body></html>
"""
