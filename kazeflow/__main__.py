"""``python -m kazeflow``: the same as the ``kazeflow`` command."""

from kazeflow.cli import main

main()
