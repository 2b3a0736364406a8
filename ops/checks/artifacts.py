"""Section 4, Artifacts: are the model files and images the ones this release recorded?

The checkpoints are hashed once (through ``ops.hashing``, the one SHA-256 engine), then compared
with the release's VERSION file and manifest; each service image must be in the engine with the
id ``invoke build`` recorded (or, where the nodes pull from a registry, the registry must serve
each recorded digest); the manifest must still match its ``.sha256``. The comparisons are
``ops.release.verify``'s, the same ones ``verify-release`` and the deploy gate run, so predeploy
and the gate can never disagree. Before a release is cut the missing files are reported with the
task that writes them rather than as failures of this section.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ops.bounded import human_bytes
from ops.checks import CheckContext
from ops.errors import OpsError
from ops.release import manifest as mf
from ops.release import verify
from ops.release.create import release_images
from ops.release.version_file import CheckpointHashes, ReleaseFileError, hash_checkpoints
from ops.report import Finding, failed, passed, skipped
from ops.runtime import registry as reg
from ops.runtime.docker_engine import try_connect

HASHED = "artifacts.models_hashed"


def run(ctx: CheckContext) -> Iterator[Finding]:
    current = None
    try:
        current = hash_checkpoints(ctx.root, ctx.settings, use_cache=ctx.use_cache,
                                   progress=ctx.progress)
    except ReleaseFileError as exc:
        yield failed(HASHED, exc.message, hint=exc.hint)
    else:
        yield models_hashed(ctx, current)
    record = verify.load_record(ctx.root, ctx.settings, ctx.version)
    repo = ctx.repo
    if current is None:
        yield skipped(verify.MODELS_MATCH, "the checkpoints could not be hashed")
    else:
        tagged_vf = (verify.tagged_version_file(ctx.root, ctx.version, record.version_file_path,
                                                repo) if repo is not None else None)
        yield verify.models_match_finding(ctx.root, ctx.settings, ctx.version, record, current,
                                          required=False, use_cache=ctx.use_cache,
                                          tagged_version=tagged_vf)
    yield images(ctx, record)
    yield from verify.manifest_findings(
        ctx.root, ctx.version, record, required=False,
        tag_commits=verify.tag_commits(ctx.root, ctx.version, repo) if repo is not None else None,
        tagged=verify.tagged_manifest(ctx.root, ctx.version, record.manifest_file, repo)
        if repo is not None else None)


def models_hashed(ctx: CheckContext, current: CheckpointHashes) -> Finding:
    where = ctx.settings.artifacts.checkpoints_dir.as_posix()
    if not current.hashes:
        return skipped(HASHED, f"no checkpoint files under {where}/ matching "
                       + " ".join(ctx.settings.artifacts.patterns))
    count = len(current.hashes)
    return passed(HASHED, f"{count} checkpoint file(s) in {where}/ hashed "
                  f"({human_bytes(current.total_bytes)})",
                  detail={"count": count, "bytes": current.total_bytes,
                          "files": current.by_name()})


def images(ctx: CheckContext, record: verify.ReleaseRecord) -> Finding:
    """The manifest's images when it lists any (ids must match); else the compose file's.

    Where the environment's nodes pull from its registry (swarm, ``registry`` set, digests
    recorded by ``invoke build --push``), the registry must serve each recorded digest instead:
    the engine this runs against is not the one that runs them.

    Ids are required only of a manifest in tminus's layout: the T-1 scripts record references
    alone, so their images are checked for presence and the message says so. A built image under
    a moving tag (``image: app:latest``) warns, with the compose line that fixes it.
    """

    manifest = record.manifest
    expected: dict[str, mf.ImageRecord] = {}
    if manifest is not None:
        expected = dict(manifest.docker_images)
    from_manifest = bool(expected)
    if not expected:
        try:
            refs = release_images(ctx.root, ctx.settings, ctx.version, env=ctx.env)
        except OpsError as exc:
            return failed(verify.IMAGES, exc.message, hint=exc.hint)
        expected = {service: mf.ImageRecord(ref) for service, ref in refs.items()}
    compose_name, unpinned = verify.unpinned_images(ctx.root, ctx.settings, ctx.version,
                                                    ctx.env)
    if not expected:
        finding = verify.images_finding(ctx.version, expected, None, None, require_ids=False,
                                        empty_reason=_no_release_image(compose_name))
        return verify.with_unpinned(finding, unpinned, ctx.version, compose_name)

    engine, reason = try_connect()
    if from_manifest and verify.pulled_from_registry(ctx.settings, ctx.env, expected):
        finding = verify.served_images_finding(ctx.version, expected, engine, reason,
                                               auth=reg.credentials(os.environ))
        return verify.with_unpinned(finding, unpinned, ctx.version, compose_name)
    finding = verify.images_finding(
        ctx.version, expected, engine, reason,
        require_ids=from_manifest and manifest is not None and manifest.records_hashes,
        note=verify.ids_note(manifest, record.manifest_file) if from_manifest else "")
    return verify.with_unpinned(finding, unpinned, ctx.version, compose_name)


def _no_release_image(compose_name: str) -> str:
    if not compose_name:
        return "no compose file (docker-compose.yml or compose.yaml): no image to check"
    return (f"no service of {compose_name} builds a release image (`build:` with an image "
            "named by ${TMINUS_VERSION}, or by compose)")


