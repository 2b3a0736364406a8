"""The task collection of this repository: tminus's tasks plus its own development tasks.

A service repository's ``tasks.py`` is ``from ops.tasks import ns``. tminus's checkout also
carries the embedded demo and the Debian base-image builder (``ops.dev``), which only this
repository needs, so it adds their tasks (``demo``, ``base-image``) here.
"""

from ops.dev.tasks import TASKS as DEV_TASKS
from ops.tasks import collection

ns = collection(*DEV_TASKS)

__all__ = ["ns"]
