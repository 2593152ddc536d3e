"""Which failures are retried (SPEC section 2, opt-in): ``retry_on``, ``dont_retry``, and
arguments that do not fit the signature.

Given a task's declaration, when its function raises (or cannot be called), then the
failure is retryable or not; bad declarations are refused when the task is declared.
"""

from __future__ import annotations

from typing import Any

import pytest

from ricochet import task, workflow
from ricochet.contracts import FailureCause
from ricochet.engine import RETRY_ANY, RecordFailure, RetryFilter, parse_retry_filter, run
from ricochet.errors import InvalidRetryFilter, RemoteError
from ricochet.workers.runtime.runner import raised
from ricochet.workers.runtime.tasks import SHAPES_KEPT
from tests.unit.builders import BOOM, at, requested, started
from tests.unit.test_decider import given, recorded


class Permanent(ValueError):
    """A failure no retry can fix."""


class Transient(ConnectionError):
    """A failure a retry may fix."""


class StillTransient(Transient):
    pass


def test_by_default_every_exception_may_be_retried() -> None:
    """No filter: the seed's behaviour, so its timings stay exact."""
    assert [True, True, True] == [RETRY_ANY.allows(k) for k in (ValueError, KeyError, Transient)]


def test_dont_retry_refuses_the_listed_types_and_their_subclasses() -> None:
    rule = parse_retry_filter("t", None, (Permanent, KeyError))

    actual = {kind.__name__: rule.allows(kind) for kind in (Permanent, KeyError, Transient)}

    assert {"Permanent": False, "KeyError": False, "Transient": True} == actual


def test_retry_on_allows_only_the_listed_types_and_their_subclasses() -> None:
    rule = parse_retry_filter("t", (Transient,), ())

    actual = [rule.allows(kind) for kind in (Transient, StillTransient, ValueError)]

    assert [True, True, False] == actual


def test_dont_retry_wins_over_retry_on() -> None:
    """``retry_on=(OSError,), dont_retry=(FileNotFoundError,)``: every OSError but that one."""
    rule = parse_retry_filter("t", (OSError,), (FileNotFoundError,))

    assert (True, False) == (rule.allows(TimeoutError), rule.allows(FileNotFoundError))


def test_an_empty_retry_on_retries_no_exception() -> None:
    """``retry_on=()``: only a lost worker or a timeout is retried (they are not filtered)."""
    assert not RetryFilter(retry_on=()).allows(Transient)


@pytest.mark.parametrize(
    ("retry_on", "dont_retry", "expected"),
    [
        ([ValueError], (), "invalid retry_on=[<class 'ValueError'>]: expected a tuple"),
        (None, ValueError, "invalid dont_retry=<class 'ValueError'>: expected a tuple"),
        (None, ("ValueError",), "'ValueError' is not an exception class"),
        (None, (KeyboardInterrupt,), "<class 'KeyboardInterrupt'> is not an exception class"),
        ((ValueError, 3), (), "3 is not an exception class"),
        ((ValueError,), (ValueError,), "ValueError also in retry_on"),
    ],
)
def test_a_filter_that_makes_no_sense_is_refused_naming_the_task(
    retry_on: Any, dont_retry: Any, expected: str
) -> None:
    """Not a tuple of exception classes (or one class both ways): refused at declaration."""
    with pytest.raises(InvalidRetryFilter) as raised_error:
        parse_retry_filter("billing:send", retry_on, dont_retry)

    assert str(raised_error.value).startswith("task 'billing:send': invalid ")
    assert expected in str(raised_error.value)


def test_the_decorators_check_the_filter_when_the_task_is_declared() -> None:
    with pytest.raises(InvalidRetryFilter, match=r"task 'x\.bad'"):
        task(retries=3, dont_retry=[ValueError], name="x.bad")(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(InvalidRetryFilter, match=r"task 'x\.bad_flow'"):
        workflow(retry_on=ValueError, name="x.bad_flow")(lambda: None)  # type: ignore[call-overload]


@task(retries=5, retry_on=(Transient,), dont_retry=(StillTransient,), name="x.filtered")
def filtered(order: int, *, currency: str = "EUR") -> None:
    """A task with both filters and a signature to bind to."""


def test_the_runner_classifies_what_the_body_raised() -> None:
    """Retryable: cause ``exception``; ruled out: cause ``not_retryable``, not retryable."""
    actual = [
        (r.cause, r.retryable)
        for r in (raised(filtered, Transient("x")), raised(filtered, StillTransient("y")))
    ]
    assert [(FailureCause.EXCEPTION, True), (FailureCause.NOT_RETRYABLE, False)] == actual
    assert "Permanent" in raised(filtered, Permanent("z")).error.type


def test_a_failed_child_is_filtered_as_a_remote_error() -> None:
    """A child's failure reaches its parent as ``RemoteError``: that is what filters see."""
    child = RemoteError("c", BOOM)
    rule = parse_retry_filter("parent", None, (RemoteError,))

    assert not rule.allows(type(child))


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((), {}, "missing a required argument: 'order'"),
        ((1, 2), {}, "too many positional arguments"),
        ((1,), {"colour": "red"}, "got an unexpected keyword argument 'colour'"),
        ((1,), {"order": 2}, "multiple values for argument 'order'"),
    ],
)
def test_arguments_that_do_not_fit_are_named_with_the_target_and_the_problem(
    args: tuple[Any, ...], kwargs: dict[str, Any], problem: str
) -> None:
    actual = filtered.arguments_problem(args, kwargs)

    expected_start = "x.filtered(order, *, currency='EUR') cannot take these arguments: "
    assert actual is not None
    assert actual.startswith(expected_start)
    assert actual.endswith(problem)


def test_arguments_that_fit_are_no_problem() -> None:
    assert filtered.arguments_problem((1,), {"currency": "USD"}) is None


def test_a_non_retryable_failure_ends_the_execution_with_retries_left() -> None:
    """Given a policy with retries left, when a failure is not retryable, then the
    execution fails at once with the failure's cause (nothing is scheduled)."""
    state = given(requested(0), started(1, 1))
    command = RecordFailure(1, FailureCause.NOT_RETRYABLE, BOOM, at(2), retryable=False)

    decision, after = run(command, state)

    assert ["attempt_failed.v1", "execution_failed.v1"] == [e.type for e in recorded(decision)]
    assert (FailureCause.NOT_RETRYABLE, 1) == (after.cause, len(after.attempts))


def test_the_fit_of_a_call_shape_is_remembered_and_the_memory_is_bounded() -> None:
    """Binding looks only at how many arguments and which names: the answer for a shape is
    kept (it costs microseconds per attempt otherwise), for a bounded number of shapes."""

    @task(name="x.shapes")
    def shapes(a: int, **rest: int) -> None:
        """Takes any keyword: every new name is a new shape."""

    assert shapes.arguments_problem((1,), {}) is None
    assert shapes.arguments_problem((2,), {}) is None
    assert shapes.arguments_problem((), {})
    for index in range(SHAPES_KEPT * 2):
        assert shapes.arguments_problem((1,), {f"k{index}": 1}) is None

    assert SHAPES_KEPT == len(shapes._shapes)
