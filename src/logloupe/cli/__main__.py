"""``python -m logloupe.cli`` — the same as the ``logloupe`` command."""

from logloupe.cli.main import main

if __name__ == "__main__":  # guarded: decoder processes re-import the main module
    main()
