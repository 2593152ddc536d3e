"""A recorded traceback cut down to the user's own frames.

A failed attempt's traceback starts in Ricochet's runner, passes through
asyncio or the thread pool that ran a sync function, and (for a child's
error) through the client that waited for it. Those frames are the same in
every failure and push the user's code out of view. ``user_frames`` replaces
each run of them with one line saying how many were left out.

The traceback was formatted on the worker's host, so frames are recognised by
their path alone. Pure: text in, text out.
"""

from __future__ import annotations

import re

RICOCHET_PARTS = frozenset(
    {"__init__.py", "__main__.py", "errors.py", "contracts", "engine", "workers"}
)
"""What the installed ``ricochet`` package holds (a unit test keeps this list true)."""
STDLIB_MACHINERY = (("asyncio",), ("concurrent", "futures"), ("threading.py",))
"""Parts of the standard library that only carry a call to the user's function."""

_FRAME = re.compile(r'^(?P<lead>[ |]*)File "(?P<path>[^"]*)", line \d+')


def _is_stdlib_folder(part: str) -> bool:
    """``python3.11`` (POSIX) or ``Lib`` (Windows): where the standard library lives."""
    return part.startswith("python3") or part == "Lib"


def is_machinery(path: str) -> bool:
    """A frame of Ricochet itself, or of the loop or pool that ran the user's function."""
    parts = re.split(r"[\\/]", path)
    for here, part in enumerate(parts[:-1]):
        after = parts[here + 1 :]
        if part == "ricochet" and after[0] in RICOCHET_PARTS:
            return True
        if _is_stdlib_folder(part) and any(
            tuple(after[: len(inner)]) == inner for inner in STDLIB_MACHINERY
        ):
            return True
    return False


def _hidden(lead: str, count: int) -> str:
    return f"{lead}… {count} frame{'s' if count != 1 else ''} of Ricochet and asyncio hidden"


def user_frames(traceback: str) -> str:
    """``traceback`` with every run of machinery frames replaced by a one-line note.

    A frame is its ``File "…", line N`` line and the lines indented beneath it
    (source, carets). Everything else (headers, the exception, chaining notes)
    is kept as it is.
    """
    lines = traceback.splitlines()
    kept: list[str] = []
    hidden, hidden_lead, at = 0, "", 0
    while at < len(lines):
        frame = _FRAME.match(lines[at])
        end = at + 1
        if frame is not None:
            lead = frame["lead"]
            while end < len(lines) and lines[end].startswith(f"{lead}  "):
                end += 1
            if is_machinery(frame["path"]):
                hidden, hidden_lead, at = hidden + 1, lead, end
                continue
        if hidden:
            kept.append(_hidden(hidden_lead, hidden))
            hidden = 0
        kept += lines[at:end]
        at = end
    if hidden:
        kept.append(_hidden(hidden_lead, hidden))
    return "\n".join(kept)
