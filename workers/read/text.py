"""Text for people's terminals, made from data Ricochet did not write itself.

Targets, error messages, tracebacks, results and whatever a projector's API
answers are user data: a control character in them could move the cursor,
recolour the screen or (bidi overrides) make the text read differently from
what it is. Everything printed from them goes through ``printable``. Pure.
"""

from __future__ import annotations

import json

import orjson

from ricochet.contracts import Json

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_UNSAFE = (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *_BIDI)
_ESCAPES = {
    **{code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _UNSAFE},
    0x0A: "\\n",
    0x0D: "\\r",
}
"""Control characters (tab excepted, newline included: split lines first), C1 controls,
line separators and bidi controls, each replaced by the escape Python's repr would use."""


def printable(text: str) -> str:
    """``text`` with every character that could steer a terminal written as an escape."""
    return text.translate(_ESCAPES)


def as_json(value: Json) -> str:
    """``value`` as compact JSON, the way ``submit --wait`` prints results.

    orjson refuses integers past 64 bits, which a reader may still accept: those
    go through the standard library's encoder, which writes any integer exactly.
    """
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return printable(text)
