"""The task collection of this service repository: tminus's tasks, configured by invoke.yaml."""

from ops.tasks import ns

__all__ = ["ns"]
