"""``tminus``: tminus's tasks without asking Invoke to find a ``tasks.py``.

``invoke`` looks for ``tasks.py`` in the current directory and then upwards, and imports the
first it finds. Run from ``src/app/`` of a service whose job module is called ``tasks.py``
(Celery's and RQ's convention), it would import the service's own code — which tminus promises
never to run. ``tminus`` carries its collection itself and reads the configuration
(``invoke.yaml``) of the enclosing git work tree, so it judges the same repository from any
folder and imports nothing of the service.
"""

from __future__ import annotations

import sys
from pathlib import Path

from invoke.program import Program

from ops.runtime.git import work_tree_top
from ops.tasks import ns


class TminusProgram(Program):
    """Invoke's program with tminus's collection built in and the project found by git."""

    def parse_collection(self) -> None:
        super().parse_collection()
        here = Path.cwd()
        root = work_tree_top(here) or here
        self.config.set_project_location(str(root))
        self.config.load_project()


def main() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("tminus")
    except PackageNotFoundError:
        release = "unknown"
    try:
        TminusProgram(namespace=ns, name="tminus", binary="tminus", version=release).run()
    except BrokenPipeError:  # `tminus --list | head`: the reader left, nothing is wrong
        sys.stderr.close()
