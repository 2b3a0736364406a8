"""Registry names, digests and credentials (ops.runtime.registry), without a registry."""

from __future__ import annotations

import shlex

import pytest

from ops.errors import UsageError
from ops.runtime.registry import (
    PASSWORD_VARIABLE,
    USERNAME_VARIABLE,
    Registry,
    RegistryError,
    credentials,
    login_argv,
    pinned,
    push_argv,
    tag_argv,
    tag_reference,
)

DIGEST = "sha256:" + "ab" * 32


def test_image_is_pushed_under_the_registry_and_its_namespace() -> None:
    registry = Registry.parse("registry.example.com:5000/team")
    assert registry.reference("tminus-demo/app:v0.2.0") == (
        "registry.example.com:5000/team/tminus-demo/app:v0.2.0")


def test_image_already_in_the_registry_keeps_its_name() -> None:
    registry = Registry.parse("10.0.0.1:5000")
    assert registry.reference("10.0.0.1:5000/app:v1") == "10.0.0.1:5000/app:v1"


def test_registry_without_dot_port_or_localhost_is_refused_as_docker_would_misread_it() -> None:
    with pytest.raises(UsageError, match="is not host\\[:port\\]"):
        Registry.parse("registry/team")


def test_localhost_is_a_registry_host() -> None:
    assert Registry.parse("localhost/team") == Registry("localhost", "team")


def test_pinned_reference_replaces_the_tag_with_the_digest() -> None:
    assert pinned("10.0.0.1:5000/app:v1", DIGEST) == f"10.0.0.1:5000/app@{DIGEST}"


def test_something_else_than_a_sha256_digest_is_refused() -> None:
    with pytest.raises(RegistryError, match="not a sha256 content digest"):
        pinned("app:v1", "md5:abc")


def test_tag_reference_names_the_tag_in_the_recorded_repository() -> None:
    assert tag_reference(f"10.0.0.1:5000/app@{DIGEST}", "v1") == "10.0.0.1:5000/app:v1"


def test_credentials_come_from_the_environment_as_a_pair() -> None:
    assert credentials({USERNAME_VARIABLE: "ci", PASSWORD_VARIABLE: "pw"}) == {
        "username": "ci", "password": "pw"}


def test_no_credentials_in_the_environment_means_docker_login() -> None:
    assert credentials({}) is None


def test_half_a_credential_pair_is_a_usage_error_naming_the_missing_half() -> None:
    with pytest.raises(UsageError, match=f"{PASSWORD_VARIABLE} is not set"):
        credentials({USERNAME_VARIABLE: "ci"})


def test_login_takes_the_password_on_stdin_never_in_argv() -> None:
    assert shlex.join(login_argv(Registry.parse("reg.example.com"), "ci")) == (
        "docker login --username ci --password-stdin reg.example.com")


def test_push_is_a_tag_then_a_push_of_the_registry_name() -> None:
    assert tag_argv("app:v1", "reg.example.com/app:v1") == [
        "docker", "tag", "app:v1", "reg.example.com/app:v1"]
    assert push_argv("reg.example.com/app:v1") == ["docker", "push", "reg.example.com/app:v1"]
