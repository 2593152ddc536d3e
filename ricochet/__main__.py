"""``python -m ricochet`` is the ``ricochet`` command."""

from ricochet.workers.cli.main import main

main()
