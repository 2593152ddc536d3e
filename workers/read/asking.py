"""Asking a projector's API, for ``status`` and ``executions``, and only the right one.

A projector answers only after its ``/health`` says it folds the vhost and
namespace the command reads (``provenance.projector_refusal``); otherwise, or
when none answers, the caller reads the log and says why. Either way the
caller can tell the person where the answer came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import orjson

from ricochet.workers.addresses import masked
from ricochet.workers.read.provenance import Provenance, projector_refusal
from ricochet.workers.read.text import printable

TIMEOUT_S = 2.0
"""A projector slower than this is not worth waiting for: the log answers too."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A projector's reply to a GET, and the line that says where it came from."""

    status: int
    body: bytes
    where: str
    """The projector's URL, printable."""
    origin: str
    """``from projector URL (vhost V, namespace N)``."""


@dataclass(frozen=True, slots=True)
class Unused:
    """Why no projector's answer is used (one line for stderr; empty: none was asked)."""

    reason: str


def shown(api_url: str) -> str:
    """The API's URL as it may be printed: no password, no control characters."""
    return printable(masked(api_url))


async def ask(
    api_url: str | None,
    wanted: Provenance,
    path: str,
    query: dict[str, str] | None = None,
    token: str | None = None,
) -> Answer | Unused:
    """GET ``path`` from the projector at ``api_url`` if it folds ``wanted``'s vhost and
    namespace; else why not. ``token`` goes in an ``Authorization: Bearer`` header."""
    if not api_url:
        return Unused("")
    where = shown(api_url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
            async with session.get(f"{api_url}/health") as health:
                refusal = projector_refusal(orjson.loads(await health.read()), wanted)
            if refusal is not None:
                return Unused(f"projector {where} not used: {refusal}")
            async with session.get(f"{api_url}{path}", params=query) as response:
                body = await response.read()
            if response.status == 401:
                return Unused(f"projector {where} not used: {_refusal(token)}")
    except (aiohttp.ClientError, TimeoutError, ValueError):  # ValueError: not JSON, bad URL
        return Unused(f"no projector answers at {where}")
    origin = printable(
        f"from projector {where} (vhost {wanted.vhost}, namespace {wanted.namespace})"
    )
    return Answer(response.status, body, where, origin)


def _refusal(token: str | None) -> str:
    """Why a projector answered 401, for the person to fix."""
    if token is None:
        return "it asks for a token (set RICOCHET_PROJECTOR_TOKEN or --projector-token-file)"
    return "it refused the token given"
