"""Tasks ``demo`` and ``base-image``: tminus's own development infrastructure, opt-in.

``TASKS`` is what tminus's root ``tasks.py`` adds to the default collection; see ``ops.dev``.
"""

from __future__ import annotations

from typing import Any

from invoke.context import Context
from invoke.tasks import Task, task

from ops.dev.baseimage import BASE_TAG, ensure_base_image
from ops.dev.demo import run_demo
from ops.runtime.docker_engine import connect, try_connect
from ops.runtime.process import Runner
from ops.taskkit import boundary, optional_path, say


@task(
    auto_shortflags=False,
    help={
        "keep": "keep the demo repository and print its path (default: removed afterwards)",
        "output": "also write the report to this file (.json → JSON, .xml → JUnit)",
        "version": "v0.2.0 (default: both releases) or v0.1.0 (the repository as of its "
                   "first release)",
    },
)
@boundary
def demo(c: Context, keep: bool = False, output: str = "", version: str = "v0.2.0") -> None:
    """Lay the embedded service into a temp git repo with releases v0.1.0/v0.2.0; predeploy it."""
    run_demo(keep=keep, output=optional_path(output), version=version)


@task(auto_shortflags=False, help={
    "tag": "image tag to create (default: tminus/debian-base:bookworm)",
    "force": "rebuild even when the tag already exists",
    "mirror": "Debian mirror (default: the one apt is configured with)",
    "dry-run": "print the commands; build nothing",
})
@boundary
def base_image(c: Context, tag: str = "", force: bool = False, mirror: str = "",
               dry_run: bool = False) -> None:
    """Build the local Debian base image (debootstrap + docker import); cached by tag."""
    client = try_connect()[0] if dry_run else connect()
    runner = Runner(dry_run=dry_run, echo=None if dry_run else (lambda line: say(f"$ {line}")))
    made = ensure_base_image(client, runner, tag=tag or BASE_TAG, force=force,
                             mirror=mirror or None, workdir=None)
    if dry_run:
        say(f"dry run: would build {made.tag} from {made.mirror}")
    elif made.built:
        say(f"built {made.tag} from {made.mirror} in {made.duration_s:.0f}s")
    else:
        say(f"{made.tag} already exists (use --force to rebuild)")


#: The development tasks, for ``ops.tasks.collection(*TASKS)``.
TASKS: tuple[Task[Any], ...] = (demo, base_image)
