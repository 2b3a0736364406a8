"""Secret references (``kms://``, ``vault://``, ``awssm://``) and the providers that resolve them.

A ``.env`` may hold a reference instead of a secret. tminus has no business guessing whether a
reference resolves, so a reference is checked only through a provider that the project configures
(``ops.secrets.providers: {vault: "mycompany.vault:provider"}``) or registers in code; without one
the check says it was not checked (a skip), never that it passed. Resolved values stay in memory.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ops.errors import ConfigError, OpsError

SCHEMES = ("kms", "vault", "awssm")


class UnresolvedReference(OpsError):
    """A provider could not resolve a reference (its message never contains a value)."""


@runtime_checkable
class SecretProvider(Protocol):
    """Resolves a full reference such as ``vault://secret/app#SECRET_KEY`` to its value."""

    def resolve(self, reference: str) -> str: ...


def scheme_of(value: str) -> str | None:
    """The scheme of a reference (``kms``, ``vault``, ``awssm``); None for a plain value."""
    head, sep, rest = value.strip().partition("://")
    scheme = head.lower()
    return scheme if sep and rest and scheme in SCHEMES else None


class InMemoryProvider:
    """A provider over a dict: for tests and local development (never for production)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def resolve(self, reference: str) -> str:
        try:
            return self._values[reference]
        except KeyError:
            raise UnresolvedReference(f"{_scheme_label(reference)} reference not found") from None


class Providers:
    """The providers known for one run, by scheme."""

    def __init__(self, providers: Mapping[str, SecretProvider] | None = None) -> None:
        self._by_scheme: dict[str, SecretProvider] = dict(providers or {})

    @classmethod
    def from_settings(cls, configured: Mapping[str, str]) -> Providers:
        """Load ``scheme → 'module:factory'``; a broken entry is a configuration error."""
        loaded: dict[str, SecretProvider] = {}
        for scheme, target in configured.items():
            if scheme not in SCHEMES:
                raise ConfigError(f"ops.secrets.providers.{scheme}: unknown scheme",
                                  hint=f"use one of {', '.join(SCHEMES)}")
            loaded[scheme] = _load(scheme, target)
        return cls(loaded)

    def register(self, scheme: str, provider: SecretProvider) -> None:
        self._by_scheme[scheme] = provider

    def for_value(self, value: str) -> SecretProvider | None:
        scheme = scheme_of(value)
        return self._by_scheme.get(scheme) if scheme else None


def _load(scheme: str, target: str) -> SecretProvider:
    module_name, _, attribute = target.partition(":")
    where = f"ops.secrets.providers.{scheme}"
    try:
        factory = getattr(importlib.import_module(module_name), attribute or "provider")
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot load {target!r} ({exc})",
                          hint="give 'package.module:factory' of an installed module") from None
    provider = factory() if callable(factory) and not isinstance(factory, SecretProvider) \
        else factory
    if not isinstance(provider, SecretProvider):
        raise ConfigError(f"{where}: {target!r} is not a provider (no resolve(reference) method)")
    return provider


def _scheme_label(reference: str) -> str:
    scheme = scheme_of(reference)
    return f"{scheme}://" if scheme else "secret"
