"""Building a release's service images, and recording their ids in the manifest.

The compose file says what to build (``build:`` context, dockerfile, args, target) and how to tag
it (``image:``, through ``ops.runtime.images.service_images``, the single source of image names; a
service without ``image:`` gets compose's own name for the project tminus deploys, see
``compose_images``). The engine builds through ``ops.runtime.docker_engine.build_image``, whose
streamed progress the task shows as it comes. Each image carries the label ``tminus.version`` so
what runs can be traced to a release.

Recording rewrites ``manifest_vX.Y.Z.json`` and its ``.sha256`` after the release commit, so the
manifest in the working tree differs from the committed one until it is committed again. Before
rewriting, the manifest's checksum must hold: re-hashing a manifest someone edited would launder
the edit.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ops.config import Settings, resolve_path
from ops.errors import BuildFailed, UsageError
from ops.redact import is_secret_name, mask
from ops.release import manifest as mf
from ops.runtime import registry as reg
from ops.runtime.compose import image_namer, project_name
from ops.runtime.docker_engine import build_image, connect
from ops.runtime.images import (
    VERSION_VARIABLE,
    DefaultName,
    ServiceImage,
    find_compose_file,
    load_compose,
    release_tag_problem,
    service_images,
    substitute,
)
from ops.versioning import ReleaseVersion

VERSION_LABEL = "tminus.version"
SERVICE_LABEL = "tminus.service"


@dataclass(frozen=True)
class BuildPlan:
    """One image to build, fully resolved: what ``docker build`` would be given."""

    service: str
    reference: str
    context: Path
    dockerfile: str  # relative to the context, as the engine expects
    args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    versioned: bool = True  # the reference carries the version: a release image

    def argv(self, *, no_cache: bool = False) -> list[str]:
        """The equivalent ``docker build`` command, shown under ``--dry-run``."""
        argv = ["docker", "build", "--tag", self.reference, "--file",
                str(self.context / self.dockerfile)]
        for key, value in self.args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels.items():
            argv += ["--label", f"{key}={value}"]
        if self.target:
            argv += ["--target", self.target]
        if no_cache:
            argv.append("--no-cache")
        return [*argv, str(self.context)]


@dataclass
class BuiltImage:
    service: str
    reference: str
    id: str
    repo_digest: str | None
    pushed: str | None = None  # the registry reference it was pushed as, with --push


@dataclass
class BuildResult:
    version: str
    plans: list[BuildPlan]
    built: list[BuiltImage] = field(default_factory=list)
    manifest: Path | None = None  # the manifest that was updated, if any
    manifest_note: str | None = None  # why it was not updated
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)  # built images the release tag cannot reach
    registry: reg.Registry | None = None  # where --push sends the release images

    def push_argv(self) -> list[list[str]]:
        """The equivalent ``docker tag`` + ``docker push`` commands (``--dry-run``)."""
        if self.registry is None:
            return []
        commands = []
        for plan in self.plans:
            if plan.versioned:
                target = self.registry.reference(plan.reference)
                commands += [reg.tag_argv(plan.reference, target), reg.push_argv(target)]
        return commands


# --- the compose file's images -------------------------------------------------------------------


def compose_image_namer(root: Path, settings: Settings, env: str = "production",
                        program: tuple[str, ...] | None = None) -> DefaultName:
    """Compose's default image name in the project tminus deploys ``env`` as.

    The project is ``ops.runtime.compose.project_name``'s (``ops.environments.<env>.project_name``,
    else ``<directory>-<env>``), the one ``-p`` every compose call gets; it is worked out, and the
    compose CLI asked, only when a service has no ``image:``.
    """
    namers: list[DefaultName] = []

    def name(service: str) -> str:
        if not namers:
            configured = (settings.environments[env].project_name
                          if env in settings.environments else None)
            namers.append(image_namer(project_name(root, env, configured), program))
        return namers[0](service)

    return name


def compose_images(root: Path, settings: Settings, version: str, env: str = "production",
                   program: tuple[str, ...] | None = None
                   ) -> tuple[Path | None, list[ServiceImage]]:
    """(compose file, every service's image at ``version``); (None, []) without a compose file."""
    configured = settings.environments[env].compose_file if env in settings.environments else None
    compose = find_compose_file(root, configured)
    if compose is None:
        return None, []
    namer = compose_image_namer(root, settings, env, program)
    return compose, service_images(compose, version, default_name=namer)


# --- planning (pure) -----------------------------------------------------------------------------


def plan_builds(compose_file: Path, version: str, *, services: Iterable[str] = (),
                build_args: Mapping[str, str] | None = None,
                environ: Mapping[str, str] | None = None,
                default_name: DefaultName | None = None) -> list[BuildPlan]:
    """Resolve every ``build:`` of the compose file at ``version``.

    Without ``services``: every built service whose image reference carries the version (the
    release images), including those compose names itself (``default_name``). Named services may
    also be built images with a fixed reference. Compose interpolation uses ``environ`` plus
    ``TMINUS_VERSION``; ``build_args`` override the file's.
    """
    specs = load_compose(compose_file)["services"]
    variables = {**(environ if environ is not None else os.environ), VERSION_VARIABLE: version}
    references = {img.service: img
                  for img in service_images(compose_file, version, default_name=default_name)}
    built = [name for name, img in references.items() if img.built]
    wanted = list(dict.fromkeys(services))
    for name in wanted:
        if name not in specs:
            raise UsageError(f"unknown service {name!r} in {compose_file.name}",
                             hint="services that build an image: " + (", ".join(built) or "none"))
        if name not in built:
            raise UsageError(f"service {name!r} does not build an image (no `build:`)",
                             hint="services that build an image: " + ", ".join(built))
    chosen = wanted or [name for name in built if references[name].versioned]
    plans = []
    for name in chosen:
        build = specs[name]["build"]
        spec: dict[str, Any] = {"context": build} if isinstance(build, str) else dict(build or {})
        context_raw = substitute(str(spec.get("context", ".")), variables)
        if "://" in context_raw or context_raw.startswith("git@"):
            raise UsageError(f"service {name!r}: remote build contexts are not supported",
                             hint="use a local directory as `build.context`")
        context = (compose_file.parent / context_raw).resolve()
        args = _build_args(spec.get("args"), variables)
        args.update(build_args or {})
        reference = references[name].reference
        plans.append(BuildPlan(
            service=name, reference=reference, context=context,
            dockerfile=substitute(str(spec.get("dockerfile", "Dockerfile")), variables),
            args=args, labels={VERSION_LABEL: version, SERVICE_LABEL: name},
            target=substitute(str(spec["target"]), variables) if spec.get("target") else None,
            versioned=references[name].versioned))
    return plans


def unpinned_notes(compose_file: Path, version: str) -> list[tuple[str, str]]:
    """(message, hint) for each built image the release tag cannot be applied to.

    Images compose names itself always carry the release tag, so a placeholder names them.
    """
    problems = (release_tag_problem(img, version, compose_file.name)
                for img in service_images(compose_file, version, default_name=str))
    return [p for p in problems if p is not None]


def _build_args(raw: Any, variables: Mapping[str, str]) -> dict[str, str]:
    """Compose's ``args`` as a mapping or a ``KEY=VALUE`` list; a bare KEY reads the environment."""
    args: dict[str, str] = {}
    items: Iterable[tuple[str, Any]]
    if isinstance(raw, Mapping):
        items = raw.items()
    elif isinstance(raw, list):
        items = [(str(x).partition("=")[0], str(x).partition("=")[2] if "=" in str(x) else None)
                 for x in raw]
    else:
        items = []
    for key, value in items:
        if value is None:
            if key in variables:
                args[str(key)] = variables[key]
            continue
        args[str(key)] = substitute(str(value), dict(variables))
    return args


def parse_build_args(pairs: Iterable[str]) -> dict[str, str]:
    """``--build-arg KEY=VALUE`` flags."""
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--build-arg {pair!r}: expected KEY=VALUE")
        args[key.strip()] = value
    return args


# --- building ------------------------------------------------------------------------------------


def build_images(root: Path, settings: Settings, release: ReleaseVersion, *,
                 services: Iterable[str] = (), no_cache: bool = False, dry_run: bool = False,
                 build_args: Mapping[str, str] | None = None, env: str = "production",
                 engine: Any | None = None,
                 on_line: Callable[[str], None] | None = None,
                 program: tuple[str, ...] | None = None, push: bool = False,
                 environ: Mapping[str, str] | None = None) -> BuildResult:
    """Build each image, then record ids and digests in the release's manifest (when it exists).

    With ``push``, every release image is also pushed to the environment's ``registry`` and its
    content digest (``<registry>/<repo>@sha256:…``) is what the manifest records: the only name
    a moved tag cannot change. Credentials come from ``environ`` (default ``os.environ``) or
    ``docker login`` (``ops.runtime.registry.credentials``); they are never printed or recorded.

    Raises UsageError before building when the compose file is missing, when its only built
    images sit under a moving tag the release cannot be applied to (``image: app:latest``), or
    when the manifest's checksum does not hold; DockerUnavailable (exit 3) when no engine answers;
    BuildFailed on a failed build. Moving-tag images beside release images are built over
    (named in ``notes`` and through ``on_line``), not refused. ``program`` is the compose CLI
    whose naming rule applies to services without ``image:``; by default it is detected.
    """
    root = resolve_path(Path.cwd(), root)
    registry, auth = _push_target(settings, env, environ) if push else (None, None)
    compose = find_compose_file(root, settings.environment(env).compose_file)
    if compose is None:
        raise UsageError("no compose file: nothing says which images to build",
                         hint="add docker-compose.yml or set ops.environments.<env>.compose_file")
    namer = compose_image_namer(root, settings, env, program)
    plans = plan_builds(compose, release.tag, services=services, build_args=build_args,
                        default_name=namer)
    unpinned = [] if services else unpinned_notes(compose, release.tag)
    if unpinned and not plans:
        message, hint = unpinned[0]
        more = f" (and {len(unpinned) - 1} more)" if len(unpinned) > 1 else ""
        raise UsageError(f"nothing to build for {release.tag}: {message}{more}", hint=hint)
    result = BuildResult(release.tag, plans, dry_run=dry_run,
                         notes=[f"{message} ({hint})" for message, hint in unpinned],
                         registry=registry)
    say = on_line or (lambda _line: None)
    for note in result.notes:
        say(f"note: {note}")
    manifest_file = mf.manifest_path(root, settings, release)
    manifest = _manifest_to_update(manifest_file, release)
    if manifest is None and manifest_file.is_file():
        result.manifest_note = (f"{manifest_file.name} is in the T-1 scripts' layout (image "
                                "references, no ids): it is left as it is and no ids are "
                                "recorded")
    elif manifest is None:
        result.manifest_note = (f"{manifest_file.name} does not exist: image ids are not "
                                f"recorded (run `invoke create-release {release.tag}` first)")
    if dry_run or not plans:
        return result

    if engine is None:
        engine = connect()
    for plan in plans:
        say(f"==> {plan.service}: building {plan.reference} from {plan.context}")
        built = _build_one(engine, plan, no_cache=no_cache, on_line=say)
        if registry is not None and plan.versioned:
            built = _push_one(engine, built, registry, auth, say)
        result.built.append(built)
    if manifest is not None:
        records = {b.service: mf.ImageRecord(b.reference, b.id, b.repo_digest)
                   for b, plan in zip(result.built, plans, strict=True) if plan.versioned}
        if records:
            mf.write(manifest_file, manifest.with_images(records))
            result.manifest = manifest_file
        else:
            result.manifest_note = "no release image was built: the manifest is unchanged"
    return result


def _push_target(settings: Settings, env: str, environ: Mapping[str, str] | None
                 ) -> tuple[reg.Registry, dict[str, str] | None]:
    """The registry ``--push`` sends to, and the credentials; checked before anything is built."""
    configured = settings.environment(env).registry
    if not configured:
        raise UsageError(f"--push: no registry configured for {env}",
                         hint=f"set ops.environments.{env}.registry (host[:port][/namespace])")
    return reg.Registry.parse(configured), reg.credentials(
        os.environ if environ is None else environ)


def _push_one(engine: Any, built: BuiltImage, registry: reg.Registry,
              auth: dict[str, str] | None, say: Callable[[str], None]) -> BuiltImage:
    target = registry.reference(built.reference)
    say(f"==> {built.service}: pushing {target}")
    digest = reg.push(engine, built.reference, target, auth=auth, on_line=say)
    repo_digest = reg.pinned(target, digest)
    say(f"==> {built.service}: {repo_digest}")
    return replace(built, repo_digest=repo_digest, pushed=target)


def _manifest_to_update(path: Path, release: ReleaseVersion) -> mf.Manifest | None:
    """The manifest to record ids in; None when there is none, or it is the T-1 scripts' (whose
    layout has no place for ids, and which tminus does not rewrite into its own)."""
    if not path.is_file():
        return None
    if not mf.read(path).records_hashes:
        return None
    check = mf.verify_checksum(path)
    if not check.ok:
        raise UsageError(f"refusing to record image ids: {check.message}",
                         hint=f"restore it (`git checkout {release.tag} -- "
                              f"{path.parent.name}/{path.name}`) and build again")
    return mf.read(path)


def _build_one(engine: Any, plan: BuildPlan, *, no_cache: bool,
               on_line: Callable[[str], None]) -> BuiltImage:
    if not (plan.context / plan.dockerfile).is_file():
        raise BuildFailed(f"{plan.service}: {plan.context / plan.dockerfile} does not exist",
                          hint="check `build.context` and `build.dockerfile` in the compose file")
    info = build_image(engine, name=plan.service, context=plan.context,
                       dockerfile=plan.dockerfile, tag=plan.reference, args=plan.args,
                       labels=plan.labels, target=plan.target, no_cache=no_cache,
                       on_line=on_line)
    digest = info.repo_digests[0] if info.repo_digests else None
    on_line(f"==> {plan.service}: {plan.reference} is {info.id}")
    return BuiltImage(plan.service, plan.reference, info.id, digest)


def describe_plan(plan: BuildPlan, *, no_cache: bool = False) -> str:
    """The dry-run line; build args whose names look secret are masked, never printed."""
    shown = {k: mask(v) if is_secret_name(k) else v for k, v in plan.args.items()}
    return shlex.join(replace(plan, args=shown).argv(no_cache=no_cache))
