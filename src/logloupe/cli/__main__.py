"""``python -m logloupe.cli`` — the same as the ``logloupe`` command."""

from logloupe.cli.main import main

main()
