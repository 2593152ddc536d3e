"""The retry policy (SPEC section 2): the seed's forms, their delays, and what is refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ricochet.contracts import RetryPolicy
from ricochet.engine import parse_retries, retry_delay, schedule
from ricochet.errors import InvalidRetryPolicy

TASK = "billing.tasks:send_invoice"


def delays(policy: RetryPolicy) -> list[float | None]:
    """The delay before every retry the policy allows, then the first one it refuses."""
    return [retry_delay(policy, k) for k in range(1, policy.retries + 2)]


def test_seed_example_schedule() -> None:
    """The seed's required example: (5, 300, 600) starts attempts at t+0 ... t+2250."""
    # Given the seed's policy
    policy = parse_retries("t", (5, 300, 600))
    # When the attempts' start offsets are computed, execution time ignored
    actual = schedule(policy)
    # Then they are exactly the seed's
    assert (0, 300, 675, 1125, 1650, 2250) == actual


def test_seed_example_delays_grow_linearly() -> None:
    """The k-th retry waits lo + (hi - lo) * (k - 1) / (N - 1): 300, 375, ... 600, then stop."""
    policy = parse_retries("t", (5, 300, 600))

    actual = delays(policy)

    assert [300.0, 375.0, 450.0, 525.0, 600.0, None] == actual


def test_plain_count_retries_immediately() -> None:
    """``retries=N`` means N retries, each started immediately after the failure."""
    policy = parse_retries(TASK, 2)

    actual = delays(policy)

    assert RetryPolicy(retries=2, delay_min=0.0, delay_max=0.0) == policy
    assert [0.0, 0.0, None] == actual


def test_count_and_delay_waits_the_same_each_time() -> None:
    """``(N, d)`` means N retries, each ``d`` seconds after the failure."""
    policy = parse_retries(TASK, (2, 300))

    actual = delays(policy)

    assert [300.0, 300.0, None] == actual


def test_single_retry_waits_lo() -> None:
    """``(1, lo, hi)``: the only retry waits ``lo`` (max(N - 1, 1) avoids dividing by zero)."""
    policy = parse_retries(TASK, (1, 10, 20))

    assert 10.0 == retry_delay(policy, 1)
    assert retry_delay(policy, 2) is None
    assert (0.0, 10.0) == schedule(policy)


def test_default_is_at_most_once() -> None:
    """``retries=0`` (the default) never re-runs: no delay after the first failure."""
    policy = parse_retries(TASK, 0)

    assert RetryPolicy() == policy
    assert retry_delay(policy, 1) is None
    assert 1 == policy.max_attempts
    assert (0.0,) == schedule(policy)


def test_retry_numbers_outside_the_policy_stop() -> None:
    """Retry 0 and negative retry numbers are not retries: the answer is "stop"."""
    policy = parse_retries(TASK, (3, 5))

    assert [None, None] == [retry_delay(policy, 0), retry_delay(policy, -1)]


def test_delay_after_failed_attempt_k_is_retry_k() -> None:
    """Failed attempt k is followed by retry k (attempt k + 1)."""
    policy = parse_retries(TASK, (3, 10, 30))

    actual = [retry_delay(policy, k) for k in range(1, 5)]

    assert [10.0, 20.0, 30.0, None] == actual


def test_policy_instance_passes_through() -> None:
    """A stored ``RetryPolicy`` is already parsed: it is returned as it is."""
    policy = RetryPolicy(retries=3, delay_min=1.0, delay_max=2.0)

    assert policy is parse_retries(TASK, policy)


def test_list_of_right_length_is_accepted() -> None:
    """A list reads like the tuple it spells (a policy loaded from JSON, say)."""
    assert parse_retries(TASK, (3, 1, 2)) == parse_retries(TASK, [3, 1, 2])


INVALID: list[object] = [
    -1,
    (-1, 10),
    (2, -5),
    (2, 10, -1),
    (2, 600, 300),
    True,
    False,
    (True, 10),
    (2, True),
    (3,),
    (3, 1, 2, 3),
    (),
    "3",
    "(3, 10)",
    (2, "10"),
    None,
    2.0,
    (2.0, 10),
    (2, float("nan")),
    (2, float("inf")),
    (2, 0, float("inf")),
    (2, float("-inf"), 10),
    [3],
    [3, 1, 2, 3],
    {"retries": 3},
]


@pytest.mark.parametrize("value", INVALID, ids=repr)
def test_invalid_policy_is_rejected_naming_task_and_value(value: object) -> None:
    """A policy that makes no sense is refused at declaration, naming the task and the value."""
    # Given a nonsensical retries= value
    # When the task is declared with it
    with pytest.raises(InvalidRetryPolicy) as raised:
        parse_retries(TASK, value)
    # Then the error names the task and the value
    message = str(raised.value)
    assert repr(TASK) in message
    assert repr(value) in message
    assert "\n" not in message
    assert TASK == raised.value.task_name
    assert raised.value.value is value


def test_invalid_policy_is_a_value_error() -> None:
    """Callers that only know ValueError still catch a bad policy."""
    with pytest.raises(ValueError, match="lo"):
        parse_retries(TASK, (2, 600, 300))


@st.composite
def valid_policies(draw: st.DrawFn) -> tuple[int, float, float]:
    count = draw(st.integers(min_value=1, max_value=50))
    ends = draw(st.lists(st.floats(min_value=0, max_value=1e5), min_size=2, max_size=2))
    low, high = sorted(ends)
    return count, low, high


@given(valid_policies())
def test_any_valid_policy_gives_n_ordered_delays_from_lo_to_hi(
    form: tuple[int, float, float],
) -> None:
    """For any (N, lo, hi): N delays, the first lo, the last hi, never decreasing, then stop."""
    # Given any valid policy
    count, low, high = form
    policy = parse_retries(TASK, form)
    # When every retry's delay is asked for
    allowed = [retry_delay(policy, k) for k in range(1, count + 1)]
    # Then each allowed retry has a delay and the one after them is refused
    assert None not in allowed
    assert retry_delay(policy, count + 1) is None
    actual = [d for d in allowed if d is not None]
    assert count == len(actual)
    assert low == actual[0]
    if count > 1:
        assert math.isclose(high, actual[-1], rel_tol=1e-12, abs_tol=1e-9)
    assert sorted(actual) == actual
    assert count + 1 == len(schedule(policy))
