"""Tracebacks for people: the user's frames kept, Ricochet's and asyncio's counted away."""

from __future__ import annotations

from pathlib import Path

import pytest

import ricochet
from ricochet.workers.read.frames import RICOCHET_PARTS, is_machinery, user_frames

LIB = "/root/.pyenv/versions/3.11.7/lib/python3.11"
RUNNER = "/srv/app/.venv/lib/python3.11/site-packages/ricochet/workers/runtime/runner.py"
USER = "/srv/app/billing/tasks.py"
# Recorded by a worker for a sync task that raised (the frames a worker really adds).
SYNC_FAILURE = f'''Traceback (most recent call last):
  File "{RUNNER}", line 159, in invoke
    result = await _call(task, args, kwargs, pool)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{LIB}/concurrent/futures/thread.py", line 58, in run
    result = self.fn(*self.args, **self.kwargs)
             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{RUNNER}", line 75, in counted
    return fn(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^
  File "{USER}", line 12, in charge
    total = price(order)
            ^^^^^^^^^^^^
  File "{USER}", line 7, in price
    raise ValueError("no price")
ValueError: no price
'''


def test_only_the_users_frames_remain() -> None:
    """The runner's and the thread pool's frames go, counted in one line where they were."""
    actual = user_frames(SYNC_FAILURE).splitlines()

    assert [
        "Traceback (most recent call last):",
        "  … 3 frames of Ricochet and asyncio hidden",
        f'  File "{USER}", line 12, in charge',
        "    total = price(order)",
        "            ^^^^^^^^^^^^",
        f'  File "{USER}", line 7, in price',
        '    raise ValueError("no price")',
        "ValueError: no price",
    ] == actual


def test_a_childs_error_keeps_both_parts_and_the_note_between() -> None:
    """The child's traceback, the note naming it, and the parent's own frames."""
    parent = (
        "Traceback (most recent call last):\n"
        f'  File "{USER}", line 20, in invoice\n'
        "    rate = fetch_rate()\n"
        '  File "/srv/app/ricochet/workers/client/handle.py", line 43, in outcome\n'
        "    raise RemoteError(state.execution_id, state.error)\n"
        "ricochet.errors.RemoteError: ValueError: no price\n"
    )
    recorded = f"{SYNC_FAILURE}\n(in child 5b43, then:)\n{parent}"

    actual = user_frames(recorded)

    assert "(in child 5b43, then:)" in actual
    assert actual.count(f'File "{USER}"') == 3
    assert "RemoteError(state.execution_id" not in actual
    assert actual.endswith("  … 1 frame of Ricochet and asyncio hidden\n" + parent.splitlines()[-1])


def test_exception_group_frames_are_recognised_under_their_bars() -> None:
    group = (
        "  + Exception Group Traceback (most recent call last):\n"
        f'  |   File "{LIB}/asyncio/taskgroups.py", line 133, in __aexit__\n'
        "  |     raise me from None\n"
        "  | ExceptionGroup: one (1 sub-exception)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | Traceback (most recent call last):\n"
        f'    |   File "{USER}", line 3, in part\n'
        "    |     raise KeyError(1)\n"
        "    | KeyError: 1\n"
    )

    actual = user_frames(group)

    assert "taskgroups.py" not in actual
    assert "  |   … 1 frame of Ricochet and asyncio hidden" in actual
    assert f'    |   File "{USER}", line 3, in part\n    |     raise KeyError(1)' in actual


def test_a_traceback_without_frames_is_kept_as_it_is() -> None:
    text = "ValueError: nothing to cut\n  with an indented second line"

    assert text == user_frames(text)


@pytest.mark.parametrize(
    "path",
    [
        RUNNER,
        "/work/repo/ricochet/engine/decider.py",
        "C:\\venv\\Lib\\site-packages\\ricochet\\errors.py",
        f"{LIB}/asyncio/events.py",
        f"{LIB}/threading.py",
        "C:\\Python311\\Lib\\concurrent\\futures\\thread.py",
    ],
)
def test_machinery_frames(path: str) -> None:
    assert is_machinery(path)


@pytest.mark.parametrize(
    "path",
    [
        USER,
        "/home/me/ricochet/tests/integration/tasks.py",  # a clone named ricochet: its tests
        "/srv/app/.venv/lib/python3.11/site-packages/asyncio/legacy.py",  # not the stdlib's
        "/srv/app/.venv/lib/python3.11/site-packages/requests/api.py",  # a library the user called
        "/srv/app/threading.py",
        "<string>",
    ],
)
def test_user_and_library_frames(path: str) -> None:
    assert not is_machinery(path)


def test_the_list_of_ricochet_parts_is_the_package() -> None:
    """Every module and sub-package of ``ricochet`` is recognised (and nothing else)."""
    package = Path(ricochet.__file__).parent
    actual = {
        p.name for p in package.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }

    assert sorted(RICOCHET_PARTS) == sorted(actual)
