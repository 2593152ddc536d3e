"""Which exceptions are worth a retry: ``retry_on=`` and ``dont_retry=`` (SPEC section 2).

Opt-in and off by default, so the seed's timings stay exact: without either,
every exception is retried while the policy has retries left. ``dont_retry``
wins over ``retry_on``, so ``retry_on=(OSError,), dont_retry=(FileNotFoundError,)``
retries every ``OSError`` but a missing file. Subclasses count, as in ``except``.

Only exceptions the function raises are filtered: a lost worker and a timeout
follow the policy as before (they say nothing about the input). A failed child
reaches its parent as ``ricochet.RemoteError`` (``Cancelled`` if it was cancelled),
so that is the type a parent's filter sees.

Pure: classes in, a verdict out; the worker's runner asks it about what it caught.
"""

from __future__ import annotations

from dataclasses import dataclass

from ricochet.errors import InvalidRetryFilter

ExceptionTypes = tuple[type[Exception], ...]


@dataclass(frozen=True, slots=True)
class RetryFilter:
    """``retry_on``: only these (None: any); ``dont_retry``: never these."""

    retry_on: ExceptionTypes | None = None
    dont_retry: ExceptionTypes = ()

    def allows(self, error: type[BaseException]) -> bool:
        """May a failure that raised ``error`` be retried (if the policy has retries left)?"""
        if issubclass(error, self.dont_retry):
            return False
        return self.retry_on is None or issubclass(error, self.retry_on)


RETRY_ANY = RetryFilter()
"""The default: every exception may be retried."""


def parse_retry_filter(task_name: str, retry_on: object, dont_retry: object) -> RetryFilter:
    """Check both declarations; raise ``InvalidRetryFilter`` naming the task and the value."""
    allowed = None if retry_on is None else _exception_types(task_name, "retry_on", retry_on)
    never = _exception_types(task_name, "dont_retry", dont_retry)
    both = [kind.__qualname__ for kind in never if allowed is not None and kind in allowed]
    if both:
        raise InvalidRetryFilter(
            task_name, "dont_retry", dont_retry, f"{', '.join(both)} also in retry_on"
        )
    return RetryFilter(allowed, never)


def _exception_types(task_name: str, argument: str, value: object) -> ExceptionTypes:
    if not isinstance(value, tuple):
        raise InvalidRetryFilter(
            task_name, argument, value, "expected a tuple of exception classes, e.g. (ValueError,)"
        )
    for item in value:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            raise InvalidRetryFilter(
                task_name, argument, value, f"{item!r} is not an exception class"
            )
    return value
