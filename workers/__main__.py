"""``python -m workers`` is the ``ricochet`` command."""

from workers.cli import main

main()
