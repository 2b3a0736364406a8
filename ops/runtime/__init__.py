"""The only code that touches the outside: git, the Docker engine, compose, Postgres, Redis, HTTP.

Checks and actions ask these adapters; they never shell out or open sockets themselves.
"""
