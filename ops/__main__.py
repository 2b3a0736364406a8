"""``python -m ops``: the ``tminus`` command (see ops/cli.py)."""

from ops.cli import main

main()
