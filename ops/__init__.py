"""tminus: the T-1 release and deployment toolkit for Docker-based services.

The import package is ``ops`` so that a service repository reads ``from ops.tasks import ns``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tminus")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
