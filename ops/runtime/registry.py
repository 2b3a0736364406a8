"""An image registry: where a release's images go so that every node runs the same bytes.

``ops.environments.<env>.registry`` names it as ``host[:port][/namespace]``; a service image
``tminus-demo/app:v0.2.0`` is pushed as ``<registry>/tminus-demo/app:v0.2.0`` and recorded by
its content digest, ``<registry>/tminus-demo/app@sha256:…``: a tag can be moved by anyone with
push rights, a digest cannot.

Credentials come from the environment (``TMINUS_REGISTRY_USERNAME`` / ``TMINUS_REGISTRY_PASSWORD``)
or, when those are unset, from ``docker login`` (the docker client's config, ``DOCKER_CONFIG``),
exactly as the docker CLI finds them. They are handed to the engine in its auth header and never
appear in argv, output, a manifest or an error message (engine errors are passed through
``ops.redact`` first). TLS trust is the engine's own: ``/etc/docker/certs.d/<host:port>/ca.crt``.

The builders are pure and return argv (what ``--dry-run`` prints); the adapters use the docker
SDK, since the engine does the pushing and the registry lookups itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ops.errors import DockerUnavailable, OpsError, UsageError
from ops.redact import mask_urls_in
from ops.runtime.images import split_reference

USERNAME_VARIABLE = "TMINUS_REGISTRY_USERNAME"
PASSWORD_VARIABLE = "TMINUS_REGISTRY_PASSWORD"  # noqa: S105 - a variable's name, not a secret
#: host[:port], then optional path components (the registry's own grammar, simplified)
_REGISTRY = re.compile(r"(?P<host>[A-Za-z0-9.-]+(?::[0-9]{1,5})?)(?P<path>(?:/[a-z0-9._-]+)*)")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class RegistryError(OpsError):
    """The registry refused or failed a push or a lookup (exit 1)."""


@dataclass(frozen=True)
class Registry:
    """``host[:port]`` and an optional namespace every image is pushed under."""

    host: str
    namespace: str = ""

    @classmethod
    def parse(cls, text: str) -> Registry:
        match = _REGISTRY.fullmatch(text.strip().rstrip("/"))
        if match is None or ("." not in match["host"] and ":" not in match["host"] and \
                match["host"] != "localhost"):
            raise UsageError(f"registry {text!r} is not host[:port][/namespace]",
                             hint="e.g. registry.example.com:5000/team (a host needs a dot, a "
                                  "port or to be localhost, as docker reads image names)")
        return cls(match["host"], match["path"].strip("/"))

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}" if self.namespace else self.host

    def reference(self, local: str) -> str:
        """Where ``local`` (``tminus-demo/app:v0.2.0``) lives in this registry."""
        repository, tag, digest = split_reference(local)
        if repository.startswith(self.host + "/"):
            return local
        prefix = str(self)
        suffix = f"@{digest}" if digest else f":{tag or 'latest'}"
        return f"{prefix}/{repository}{suffix}"


def pinned(reference: str, digest: str) -> str:
    """``repo:tag`` + digest → ``repo@sha256:…`` (the form a deploy runs)."""
    if not DIGEST.fullmatch(digest):
        raise RegistryError(f"{digest[:80]!r} is not a sha256 content digest")
    repository, _, _ = split_reference(reference)
    return f"{repository}@{digest}"


def digest_of(repo_digest: str) -> str:
    """The ``sha256:…`` part of ``repo@sha256:…``."""
    return repo_digest.rpartition("@")[2]


def tag_reference(repo_digest: str, tag: str) -> str:
    """The tag, in the repository a recorded digest names: what the registry must still serve."""
    return f"{repo_digest.partition('@')[0]}:{tag}"


# --- credentials ---------------------------------------------------------------------------------


def credentials(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The auth the engine is given; None means the docker client's own (``docker login``).

    Half a pair is a usage error: a push with a username and no password would silently fall
    back to another identity.
    """
    user, password = environ.get(USERNAME_VARIABLE), environ.get(PASSWORD_VARIABLE)
    if not user and not password:
        return None
    if not user or not password:
        missing = USERNAME_VARIABLE if not user else PASSWORD_VARIABLE
        raise UsageError(f"{missing} is not set, but the other half of the registry "
                         "credentials is", hint="set both, or neither to use `docker login`")
    return {"username": user, "password": password}


# --- argv (pure): what --dry-run prints ----------------------------------------------------------


def tag_argv(source: str, target: str) -> list[str]:
    return ["docker", "tag", source, target]


def push_argv(target: str) -> list[str]:
    return ["docker", "push", target]


def login_argv(registry: Registry, username: str) -> list[str]:
    """The password goes on stdin, never on the command line (``ps`` shows argv)."""
    return ["docker", "login", "--username", username, "--password-stdin", registry.host]


def inspect_argv(reference: str) -> list[str]:
    return ["docker", "buildx", "imagetools", "inspect", reference]


# --- adapters ------------------------------------------------------------------------------------


def push(client: Any, source: str, target: str, *, auth: dict[str, str] | None,
         on_line: Callable[[str], None] = lambda _line: None) -> str:
    """Tag ``source`` as ``target``, push it, and return the digest the registry stored.

    The digest is the one the registry reported for this push (the engine's ``aux`` record),
    so it names exactly the bytes that were uploaded.
    """
    from docker.errors import APIError, DockerException

    repository, tag, _ = split_reference(target)
    try:
        client.api.tag(source, repository, tag)
        stream = client.api.push(repository, tag=tag, auth_config=auth, stream=True,
                                 decode=True)
        digest = None
        for chunk in stream:
            if chunk.get("error") or chunk.get("errorDetail"):
                message = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message")
                raise RegistryError(f"pushing {target} failed: "
                                    f"{mask_urls_in(str(message)).strip()[:300]}",
                                    hint="check the registry address, its TLS trust "
                                         "(/etc/docker/certs.d/<host:port>/ca.crt) and the "
                                         "credentials (docker login, or "
                                         f"{USERNAME_VARIABLE}/{PASSWORD_VARIABLE})")
            aux = chunk.get("aux") or {}
            if aux.get("Digest"):
                digest = str(aux["Digest"])
            elif chunk.get("status") and chunk.get("id") is None:
                on_line(str(chunk["status"]))
    except APIError as exc:
        raise RegistryError(f"pushing {target} failed: "
                            f"{mask_urls_in(str(exc.explanation or exc))[:300]}") from None
    except (DockerException, OSError) as exc:
        raise DockerUnavailable(f"the engine stopped answering while pushing {target} "
                                f"({type(exc).__name__})") from None
    if digest is None or not DIGEST.fullmatch(digest):
        raise RegistryError(f"pushing {target}: the registry reported no content digest")
    return digest


def served_digest(client: Any, reference: str, *, auth: dict[str, str] | None) -> str | None:
    """The digest the registry serves for ``reference`` now (by tag or by digest); None when it
    has no such manifest. The engine asks the registry, with its own TLS trust."""
    from docker.errors import APIError, DockerException, NotFound

    try:
        data = client.api.inspect_distribution(reference, auth_config=auth)
    except NotFound:
        return None
    except APIError as exc:
        text = str(exc.explanation or exc)
        if "manifest unknown" in text or "not found" in text.lower():
            return None
        raise RegistryError(f"the registry did not answer for {reference}: "
                            f"{mask_urls_in(text)[:300]}") from None
    except (DockerException, OSError) as exc:
        raise DockerUnavailable(f"the engine stopped answering ({type(exc).__name__})") from None
    digest = str(((data or {}).get("Descriptor") or {}).get("digest") or "")
    return digest if DIGEST.fullmatch(digest) else None
