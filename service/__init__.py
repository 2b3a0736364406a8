"""The small service tminus ships and operates: an HTTP API and a worker."""
