"""Secret references and their providers (an in-memory provider stands in for a cloud KMS)."""

from __future__ import annotations

import pytest

from ops.errors import ConfigError
from ops.kms import InMemoryProvider, Providers, UnresolvedReference, scheme_of


@pytest.mark.parametrize(("value", "scheme"), [
    ("kms://projects/p/keys/k", "kms"), ("vault://secret/app#KEY", "vault"),
    ("AWSSM://prod/db", "awssm"), ("https://example.com", None), ("kms://", None),
    ("plain-value", None),
])
def test_scheme_of_recognises_only_reference_schemes(value: str, scheme: str | None) -> None:
    assert scheme_of(value) == scheme


def test_in_memory_provider_resolves_a_known_reference() -> None:
    providers = Providers({"vault": InMemoryProvider({"vault://a#K": "resolved"})})
    provider = providers.for_value("vault://a#K")
    assert provider is not None
    assert provider.resolve("vault://a#K") == "resolved"


def test_in_memory_provider_error_names_the_scheme_not_the_reference() -> None:
    with pytest.raises(UnresolvedReference) as caught:
        InMemoryProvider({}).resolve("vault://team/db-password")
    assert caught.value.message == "vault:// reference not found"


def test_no_provider_for_an_unconfigured_scheme() -> None:
    assert Providers().for_value("kms://key") is None


def test_unknown_scheme_in_settings_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"ops.secrets.providers.gcp: unknown scheme"):
        Providers.from_settings({"gcp": "x:y"})


def test_unimportable_provider_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"ops.secrets.providers.vault: cannot load"):
        Providers.from_settings({"vault": "no_such_module_here:provider"})


def test_provider_factory_is_loaded_from_settings() -> None:
    providers = Providers.from_settings({"kms": "tests.unit.test_secrets_kms:in_memory_factory"})
    provider = providers.for_value("kms://k")
    assert provider is not None
    assert provider.resolve("kms://k") == "v"


def in_memory_factory() -> InMemoryProvider:
    return InMemoryProvider({"kms://k": "v"})
