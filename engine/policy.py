"""Retry policies: parse the seed's ``retries=`` forms and compute each retry's delay.

Pure functions of their inputs (STYLE rule 4): the delay before retry k depends
on the policy and k only. Jitter, if a task opts in, is applied by the caller
with randomness passed in as data.
"""

from __future__ import annotations

from numbers import Real

from ricochet.contracts.limits import MAX_DELAY_S
from ricochet.contracts.policy import RetryPolicy
from ricochet.errors import InvalidRetryPolicy


def _number(task_name: str, value: object, whole: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidRetryPolicy(task_name, whole, f"{what} must be a number, not {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidRetryPolicy(task_name, whole, f"{what} must be finite")
    if number < 0:
        raise InvalidRetryPolicy(task_name, whole, f"{what} must be >= 0")
    if number > MAX_DELAY_S:
        raise InvalidRetryPolicy(task_name, whole, f"{what} must be <= {MAX_DELAY_S:g} s (a year)")
    return number


def _count(task_name: str, value: object, whole: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRetryPolicy(task_name, whole, f"the retry count must be an int, not {value!r}")
    if value < 0:
        raise InvalidRetryPolicy(task_name, whole, "the retry count must be >= 0")
    return value


def parse_retries(task_name: str, value: object) -> RetryPolicy:
    """``N``, ``(N, d)`` or ``(N, lo, hi)`` -> a policy; anything else is rejected.

    A ``RetryPolicy`` instance passes through, so policies can be stored and reused.
    """
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, tuple | list):
        if len(value) not in (2, 3):
            raise InvalidRetryPolicy(task_name, value, "expected N, (N, delay) or (N, lo, hi)")
        count = _count(task_name, value[0], value)
        delays = [_number(task_name, d, value, "a delay") for d in value[1:]]
        low, high = delays[0], delays[-1]
        if low > high:
            raise InvalidRetryPolicy(task_name, value, f"lo ({low}) is greater than hi ({high})")
        return RetryPolicy(retries=count, delay_min=low, delay_max=high)
    return RetryPolicy(retries=_count(task_name, value, value))


def retry_delay(policy: RetryPolicy, retry: int) -> float | None:
    """Seconds before the ``retry``-th retry (1-based), or None when retries are spent.

    Retry k follows failed attempt k, so this is also the wait after attempt k fails.

    The k-th retry waits ``lo + (hi - lo) * (k - 1) / max(N - 1, 1)`` (SPEC section 2).
    """
    if retry < 1 or retry > policy.retries:
        return None
    span = policy.delay_max - policy.delay_min
    return policy.delay_min + span * (retry - 1) / max(policy.retries - 1, 1)


def schedule(policy: RetryPolicy) -> tuple[float, ...]:
    """Every attempt's start offset when execution time is ignored (the seed's example)."""
    offsets = [0.0]
    for retry in range(1, policy.retries + 1):
        delay = retry_delay(policy, retry)
        assert delay is not None
        offsets.append(offsets[-1] + delay)
    return tuple(offsets)
