"""This repository's own infrastructure: the embedded demo and the Debian base image it builds on.

Nothing in the library's core imports this package (``scripts/check_layers.py`` puts it above the
task layer), and the default task collection (``ops.tasks.ns``, which ``tminus`` and a service
repository's ``tasks.py`` use) does not carry its tasks. tminus's own root ``tasks.py`` adds them
with ``ops.tasks.collection(*ops.dev.tasks.TASKS)``; a service repository that wants
``base-image`` (say, a machine without a registry) opts in the same way.
"""
