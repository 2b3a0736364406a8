"""Moved to ``ops.runtime.images`` (the compose file model is outside I/O: it reads the file).

Kept as a re-export only for ``ops/deploy/stack.py``, which was being reshaped at the same time;
import from ``ops.runtime.images`` and remove this module once nothing imports it.
"""

from ops.runtime.images import ServiceImage, find_compose_file, service_images

__all__ = ["ServiceImage", "find_compose_file", "service_images"]
