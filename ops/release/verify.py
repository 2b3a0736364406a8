"""Does what is on disk (and in the engine) still equal what the release recorded?

``verify_release`` is the tamper gate: ``invoke verify-release`` prints its findings and the deploy
task refuses to ship when any of them fails. The predeploy artifacts section builds on the same
functions, so the checklist and the gate can never disagree about a file.

A release cut by the T-1 document's own scripts is verified as far as its files go: its manifest
has no per-file hashes or image ids, so the checkpoints are compared with the VERSION file (which
must then equal the one committed at the tag), the images are checked for presence, and each
finding says what it could not prove. Weaker is not wrong: those findings pass, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ops.bounded import NAME_CHARS, SENTENCE_CHARS, clipped, listed
from ops.config import Settings, resolve_path
from ops.errors import OpsError
from ops.release import manifest as mf
from ops.release import version_file as vfile
from ops.release.version_file import CheckpointHashes, ReleaseFileError, VersionFile
from ops.report import Finding, Status, failed, passed, skipped
from ops.runtime import registry as reg
from ops.runtime.docker_engine import image_info, try_connect
from ops.runtime.files import shown_path
from ops.runtime.git import file_at, open_repo
from ops.runtime.images import (
    ServiceImage,
    find_compose_file,
    release_tag_problem,
    service_images,
    split_reference,
)
from ops.versioning import ReleaseVersion

#: The shortest abbreviated commit accepted where a manifest names one (git's own default).
SHORT_COMMIT = 7
#: How many items a message lists before "and N more" (ops.bounded.listed): enough for a real
#: release (a few services, a handful of drifted fields), a line for a crafted one.
DRIFT_SHOWN = 5
LABELS_SHOWN = 5
IMAGES_SHOWN = 8
#: Names kept per list in a finding's detail (with the full counts beside them).
DETAIL_NAMES = 1000

MANIFEST = "artifacts.manifest"
INTEGRITY = "artifacts.manifest_integrity"
MODELS_MATCH = "artifacts.models_match_release"
IMAGES = "artifacts.images"
REGISTRY = "artifacts.registry_digests"


@dataclass(frozen=True)
class ReleaseRecord:
    """The release's files as found on disk; ``None`` where a file is absent."""

    manifest_file: Path
    version_file_path: Path
    manifest: mf.Manifest | None
    manifest_error: str | None
    version_file: VersionFile | None
    version_file_error: str | None


def load_record(root: Path, settings: Settings, version: ReleaseVersion) -> ReleaseRecord:
    manifest_file = mf.manifest_path(root, settings, version)
    vf_path = vfile.version_file_path(root, settings, version)
    manifest: mf.Manifest | None = None
    manifest_error = None
    if manifest_file.is_file():
        try:
            manifest = mf.read(manifest_file)
        except ReleaseFileError as exc:
            manifest_error = exc.message
    vf: VersionFile | None = None
    vf_error = None
    if vf_path.is_file():
        try:
            vf = vfile.read(vf_path)
        except ReleaseFileError as exc:
            vf_error = exc.message
    return ReleaseRecord(manifest_file, vf_path, manifest, manifest_error, vf, vf_error)


# --- artifacts.manifest / artifacts.manifest_integrity -------------------------------------------


def manifest_findings(root: Path, version: ReleaseVersion, record: ReleaseRecord, *,
                      required: bool, tag_commits: tuple[str, list[str]] | None,
                      tagged: mf.Manifest | None = None) -> list[Finding]:
    """The manifest is there, parses, is this version's and agrees with the tag; its sum holds.

    ``tag_commits`` is (tag's commit, its parents) when the tag exists; ``tagged`` the manifest
    as committed at the tag. A manifest rewritten together with its checksum still fails when it
    drifts from the committed one in anything but the image ids ``build`` adds. A missing
    manifest fails when ``required`` (the tamper gate) and warns otherwise (predeploy, before the
    release is cut).
    """
    name = shown_path(root, record.manifest_file)
    if not record.manifest_file.is_file():
        status = Status.FAIL if required else Status.WARN
        return [
            Finding(MANIFEST, status, f"{name} does not exist",
                    hint=f"`invoke create-release {version.tag}` writes it"),
            skipped(INTEGRITY, f"no {record.manifest_file.name} to verify"),
        ]
    findings: list[Finding] = [_manifest_content(name, version, record, tag_commits)]
    result = mf.verify_checksum(record.manifest_file)
    drift = drift_from_tag(record.manifest, tagged) if record.manifest and tagged else []
    sums = mf.checksum_path(record.manifest_file)
    if (record.manifest is not None and not record.manifest.records_hashes
            and not sums.exists()):
        findings.append(_integrity_without_checksum(name, version, record.manifest_file,
                                                    tagged, drift))
    elif result.ok and drift:
        findings.append(failed(
            INTEGRITY, f"{record.manifest_file.name} differs from the one committed at "
            f"{version.tag} in {listed(drift, shown=DRIFT_SHOWN, chars=SENTENCE_CHARS)}",
            hint=f"restore it with `git checkout {version.tag} -- {name}` and re-run "
                 f"`invoke build {version.tag}`"))
    elif result.ok:
        findings.append(passed(INTEGRITY, result.message))
    else:
        findings.append(failed(
            INTEGRITY, result.message,
            hint=f"the manifest was changed after it was written; restore it from git "
                 f"(`git checkout {version.tag} -- {name}`) or re-run `invoke build`"))
    return findings


def _integrity_without_checksum(name: str, version: ReleaseVersion, manifest_file: Path,
                                tagged: mf.Manifest | None, drift: list[str]) -> Finding:
    """The T-1 scripts write no ``.sha256``: the copy committed at the tag is the reference."""
    sums = mf.checksum_path(manifest_file).name
    if tagged is None:
        return skipped(INTEGRITY, f"no {sums} (the T-1 scripts write none) and no copy of "
                       f"{manifest_file.name} committed at {version.tag} to compare with",
                       hint=f"commit the manifest with the release, or write its checksum: "
                            f"`cd {manifest_file.parent.name} && sha256sum {manifest_file.name} "
                            f"> {sums}`")
    if drift:
        return failed(INTEGRITY, f"{manifest_file.name} differs from the one committed at "
                      f"{version.tag} in {listed(drift, shown=DRIFT_SHOWN, chars=SENTENCE_CHARS)}",
                      hint=f"restore it with `git checkout {version.tag} -- {name}`")
    return passed(INTEGRITY, f"{manifest_file.name} equals the one committed at {version.tag} "
                  f"(no {sums}: the T-1 scripts write none)")


def _is_commit(recorded: str, full: str) -> bool:
    """A manifest's commit names ``full``: the same, or an abbreviation of it (the T-1 scripts
    may record ``git rev-parse --short HEAD``)."""
    recorded = recorded.strip().lower()
    return recorded == full or (len(recorded) >= SHORT_COMMIT and full.startswith(recorded))


def _manifest_content(name: str, version: ReleaseVersion, record: ReleaseRecord,
                      tag_commits: tuple[str, list[str]] | None) -> Finding:
    manifest = record.manifest
    if manifest is None:
        return failed(MANIFEST, record.manifest_error or f"{name} cannot be read",
                      hint="restore it from git or cut the release again")
    if manifest.version.removeprefix("v") != version.tag.removeprefix("v"):
        return failed(MANIFEST, f"{name} is for {clipped(manifest.version)}, not {version.tag}")
    source = manifest.git.commit
    if tag_commits is not None:
        tagged, parents = tag_commits
        if not any(_is_commit(source, commit) for commit in (tagged, *parents)):
            return failed(MANIFEST, f"tag {version.tag} points at {tagged[:12]}, which is neither "
                          f"the manifest's commit {clipped(source[:12])} nor its release commit",
                          hint="the tag was moved or the manifest copied from another release")
    detail = {"commit": clipped(source), "branch": clipped(manifest.git.branch),
              "tag": clipped(manifest.git.tag), "layout": manifest.layout}
    on = f" on {clipped(manifest.git.branch)}" if manifest.git.branch else ""
    if not manifest.records_hashes:
        labels = listed((f"{clipped(k)}: {clipped(v)}" for k, v in manifest.labels.items()),
                        shown=LABELS_SHOWN, chars=SENTENCE_CHARS) or "none"
        return passed(MANIFEST, f"{name} (the T-1 scripts' layout: artifacts {{{labels}}}, no "
                      f"per-file hashes): {len(manifest.docker_images)} image(s) by reference, "
                      f"cut from {source[:12]}{on}", detail=detail)
    return passed(MANIFEST, f"{name}: {len(manifest.artifacts)} artifact(s), "
                  f"{len(manifest.docker_images)} image(s), cut from {source[:12]}{on}",
                  detail=detail)


def drift_from_tag(current: mf.Manifest, tagged: mf.Manifest) -> list[str]:
    """What differs from the committed manifest beyond the ids and digests build records."""
    drift = [name for name, a, b in (
        ("version", current.version, tagged.version),
        ("release_date", current.release_date, tagged.release_date),
        ("git", current.git, tagged.git),
        ("artifacts", (current.layout, current.artifacts, current.labels),
         (tagged.layout, tagged.artifacts, tagged.labels))) if a != b]
    for service, was in tagged.docker_images.items():
        now = current.docker_images.get(service)
        if now is None or now.image != was.image or (was.id and now.id != was.id) or (
                was.repo_digest and now.repo_digest != was.repo_digest):
            drift.append(f"docker_images.{service}")
    return drift


def tagged_manifest(root: Path, version: ReleaseVersion, manifest_file: Path,
                    repo: Any | None = None) -> mf.Manifest | None:
    """The manifest as committed at the release tag, or None (no repo, tag or file there)."""
    text = _tagged_text(root, version, manifest_file, repo)
    try:
        return mf.parse(text) if text is not None else None
    except ReleaseFileError:
        return None


def tagged_version_file(root: Path, version: ReleaseVersion, path: Path,
                        repo: Any | None = None) -> VersionFile | None:
    """The VERSION file as committed at the release tag, or None (no repo, tag, file, or it does
    not parse: then the working copy's own reading reports the problem)."""
    text = _tagged_text(root, version, path, repo)
    try:
        return vfile.parse(text) if text is not None else None
    except ReleaseFileError:
        return None


def _tagged_text(root: Path, version: ReleaseVersion, path: Path,
                 repo: Any | None) -> str | None:
    """``path`` as committed at the release tag, or None (no repo, no such tag, no such file)."""
    if repo is None:
        try:
            repo = open_repo(root)
        except OpsError:
            return None
    if version.tag not in {t.name for t in repo.tags}:
        return None
    return file_at(repo, version.tag, shown_path(root, path))


# --- artifacts.models_match_release --------------------------------------------------------------


def _display(current: CheckpointHashes, root: Path, artifact: mf.Artifact) -> str:
    """Name an artifact the way the VERSION file does, so both sources merge into one list."""
    try:
        location = mf.artifact_location(root, artifact)
    except ReleaseFileError:
        return artifact.path
    try:
        return location.relative_to(current.directory).as_posix()
    except ValueError:
        return artifact.path


def models_match_finding(root: Path, settings: Settings, version: ReleaseVersion,
                         record: ReleaseRecord, current: CheckpointHashes, *,
                         required: bool, use_cache: bool = True,
                         tagged_version: VersionFile | None = None) -> Finding:
    """Compare today's checkpoints with the VERSION file and every artifact of the manifest.

    A manifest without per-file hashes (the T-1 scripts') vouches for nothing here, so the
    VERSION file's hashes are used alone, and that file must then match ``tagged_version`` (its
    copy committed at the tag): nothing else would catch a file swapped together with its line.
    """
    sources: list[str] = []
    problems: list[str] = []
    changed: set[str] = set()
    missing: set[str] = set()
    extra: set[str] = set()
    actual = current.by_name()
    manifest = record.manifest
    vf, vf_name = record.version_file, record.version_file_path.name
    hashless = manifest is not None and not manifest.records_hashes
    if record.version_file_error:
        problems.append(record.version_file_error)
    if vf is not None:
        sources.append(vf_name)
        if not vfile.names_version(vf, version):
            problems.append(f"{vf_name} is for {clipped(vf.version) or 'no version'}, not "
                            f"{version.tag}")
        if (manifest is None or hashless) and tagged_version is not None and (
                tagged_version.files != vf.files):
            problems.append(f"{vf_name} differs from the one committed at {version.tag}")
        c, m, e = vfile.compare(vf.files, actual)
        changed.update(c)
        missing.update(m)
        extra.update(e)
    if manifest is not None and manifest.records_hashes:
        sources.append(record.manifest_file.name)
        expected, found, bad = _manifest_hashes(root, settings, manifest, current,
                                                use_cache=use_cache)
        problems += bad
        c, m, e = vfile.compare(expected, {**actual, **found})
        changed.update(c)
        missing.update(m)
        extra.update(e)
    if hashless and not sources and not problems:
        return _hashless_without_version_file(record, version, len(actual))
    if not sources and not problems:
        hint = f"`invoke create-release {version.tag}` writes them"
        what = f"no {record.version_file_path.name} or {record.manifest_file.name}"
        if required:
            return failed(MODELS_MATCH, f"{what}: nothing to compare the checkpoints with",
                          hint=hint)
        return skipped(MODELS_MATCH, f"{what} yet: nothing to compare with", hint=hint)
    # each list is bounded: a release file may name 300 000 files, or one 20 MB name
    parts = [f"{label} {listed(sorted(names))}" for label, names in
             (("changed", changed), ("missing", missing), ("extra", extra)) if names]
    detail: dict[str, Any] = {"changed": _names(changed), "missing": _names(missing),
                              "extra": _names(extra), "against": sources,
                              "counts": {"changed": len(changed), "missing": len(missing),
                                         "extra": len(extra)}}
    if problems:
        parts.append(listed(problems, sep="; ", chars=SENTENCE_CHARS))
    if parts:
        return failed(MODELS_MATCH,
                      f"checkpoints differ from release {version.tag}: " + "; ".join(parts),
                      hint="restore the released files, or cut a new release for these",
                      detail=detail)
    note = (f" (hashes from {vf_name}, {record.manifest_file.name} has none: it is in the T-1 "
            "scripts' layout)" if hashless else "")
    return passed(MODELS_MATCH, f"{len(actual)} checkpoint file(s) match "
                  + " and ".join(sources) + note, detail=detail)


def _names(names: set[str]) -> list[str]:
    """A detail list: sorted, at most ``DETAIL_NAMES`` names, each clipped (counts say the rest)."""
    return [clipped(name) for name in sorted(names)[:DETAIL_NAMES]]


def _hashless_without_version_file(record: ReleaseRecord, version: ReleaseVersion,
                                   count: int) -> Finding:
    """A T-1 manifest and no VERSION file: nothing records a hash of any checkpoint."""
    manifest, vf_name = record.manifest_file.name, record.version_file_path.name
    if not count:
        return passed(MODELS_MATCH, f"no checkpoint files, and none recorded ({manifest} is in "
                      f"the T-1 scripts' layout, without per-file hashes; no {vf_name})")
    return failed(MODELS_MATCH, f"{manifest} records no per-file hashes (the T-1 scripts' "
                  f"layout) and {vf_name} does not exist: nothing proves the {count} checkpoint "
                  "file(s)",
                  hint=f"restore {vf_name} as committed at {version.tag}; releases cut with "
                       "`invoke create-release` record the hashes in both files")


def _manifest_hashes(root: Path, settings: Settings, manifest: mf.Manifest,
                     current: CheckpointHashes, *, use_cache: bool = True
                     ) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(expected, found, problems): every manifest artifact, hashed where it is today.

    Artifacts outside the checkpoint patterns (the VERSION file itself) are hashed here too, so
    an edited VERSION file is caught even though it hashes nothing itself.
    """
    expected: dict[str, str] = {}
    found: dict[str, str] = {}
    to_hash: dict[Path, str] = {}
    problems: list[str] = []
    known = {p.resolve(): h for p, h in current.hashes.items()}
    for artifact in manifest.artifacts:
        name = _display(current, root, artifact)
        expected[name] = artifact.sha256
        try:
            location = mf.artifact_location(root, artifact)
        except ReleaseFileError as exc:
            problems.append(exc.message)
            continue
        if location.is_symlink() or not location.is_file():
            continue
        if location.resolve() in known:
            found[name] = known[location.resolve()]
        else:
            to_hash[location] = name
    if to_hash:
        hashes = vfile.hash_paths(list(to_hash), settings, root, use_cache=use_cache)
        found.update({to_hash[p]: h for p, h in hashes.items()})
    return expected, found, problems


# --- artifacts.images ----------------------------------------------------------------------------


def images_finding(version: ReleaseVersion, expected: Mapping[str, mf.ImageRecord],
                   engine: Any | None, engine_reason: str | None, *,
                   require_ids: bool, empty_reason: str | None = None,
                   note: str = "") -> Finding:
    """Each service's image at this version is in the engine, with the recorded id and digest.

    ``note`` is appended to a pass: what the check could not prove (a manifest recording
    references but no ids).
    """
    if not expected:
        return skipped(IMAGES, empty_reason
                       or "no service builds an image (no `build:` in the compose file)")
    if engine is None:
        return skipped(IMAGES, f"image ids not checked: {engine_reason or 'no Docker engine'}")
    # only now: the docker SDK (with requests and urllib3) costs a few tenths of a second of
    # every predeploy of a service that has no image to look up
    from docker.errors import DockerException

    verdicts: list[tuple[Status, str]] = []
    found: dict[str, Any] = {}
    try:
        for service, record in expected.items():
            verdicts.append(_one_image(engine, service, record, found, require_ids=require_ids))
    except (OSError, DockerException) as exc:
        return skipped(IMAGES, f"image ids not checked: the engine stopped answering "
                       f"({type(exc).__name__})")
    detail = {"images": found}
    hint = f"`invoke build {version.tag}` builds the images and records their ids"
    for status in (Status.FAIL, Status.WARN):
        bad = [text for s, text in verdicts if s is status]
        if bad:
            return Finding(IMAGES, status,
                           listed(bad, shown=IMAGES_SHOWN, sep="; ", chars=SENTENCE_CHARS),
                           hint=hint, detail=detail)
    return passed(IMAGES, f"{len(verdicts)} image(s) present: "
                  + listed((text for _, text in verdicts), shown=IMAGES_SHOWN,
                         chars=SENTENCE_CHARS) + note,
                  detail=detail)


def ids_note(manifest: mf.Manifest | None, manifest_file: Path) -> str:
    """What ``images_finding`` cannot prove with a manifest that records no image ids."""
    if manifest is None or manifest.records_hashes or not manifest.docker_images:
        return ""
    return (f" (ids not compared: {manifest_file.name} records image references only, in the "
            "T-1 scripts' layout)")


def with_unpinned(finding: Finding, images: list[ServiceImage], version: ReleaseVersion,
                  compose_name: str) -> Finding:
    """Add a warning for each built image the release tag cannot be applied to.

    Such an image (``image: app:latest``) is rebuilt in place by every release, so no release
    record can pin it; the fix is one line of the compose file, which the hint gives.
    """
    problems = [p for p in (release_tag_problem(i, version.tag, compose_name) for i in images)
                if p is not None]
    if not problems:
        return finding
    text = "; ".join(message for message, _ in problems)
    hint = "; ".join(hint for _, hint in problems)
    if finding.status is Status.SKIP:
        return Finding(IMAGES, Status.WARN, f"{text}; {finding.message}", hint=hint,
                       detail=finding.detail)
    status = Status.FAIL if finding.status is Status.FAIL else Status.WARN
    hints = hint if finding.status is Status.PASS or not finding.hint else f"{finding.hint}; {hint}"
    return Finding(IMAGES, status, f"{finding.message}; {text}", hint=hints,
                   detail=finding.detail)


def _one_image(engine: Any, service: str, record: mf.ImageRecord, found: dict[str, Any], *,
               require_ids: bool) -> tuple[Status, str]:
    info = image_info(engine, record.image)
    service = clipped(service)  # names from the manifest: a line each, whatever their length
    record = replace(record, image=clipped(record.image)) if len(record.image) > NAME_CHARS \
        else record
    if info is None:
        return Status.FAIL, f"{service}: {record.image} is not in the engine"
    found[service] = {"image": record.image, "id": info.id,
                      "repo_digests": list(info.repo_digests)}
    if record.id and record.id != info.id:
        return Status.FAIL, (f"{service}: {record.image} is {info.id[:19]}, the manifest "
                             f"recorded {record.id[:19]}")
    if record.repo_digest and record.repo_digest not in info.repo_digests:
        return Status.FAIL, (f"{service}: {record.image} lacks the recorded digest "
                             f"{record.repo_digest}")
    if not record.id and require_ids:
        return Status.WARN, f"{service}: no image id recorded for {record.image}"
    return Status.PASS, f"{service} {info.id[:19]}"


def pulled_from_registry(settings: Settings, env: str,
                         expected: Mapping[str, mf.ImageRecord]) -> bool:
    """Whether ``env`` runs these images from its registry rather than from the local engine:
    a backend whose nodes pull (swarm), a registry configured, and every image's digest
    recorded (``invoke build --push``). On compose the engine that runs them is the local one."""
    try:
        environment = settings.environment(env)
    except OpsError:
        return False
    return (environment.backend != "compose" and bool(environment.registry) and bool(expected)
            and all(r.repo_digest for r in expected.values()))


def served_images_finding(version: ReleaseVersion, expected: Mapping[str, mf.ImageRecord],
                          engine: Any | None, engine_reason: str | None, *,
                          auth: dict[str, str] | None) -> Finding:
    """``artifacts.images`` where the nodes pull from a registry: each recorded digest is
    served by the registry (the engine asks it, with its TLS trust and these credentials).

    The local engine's image store is not consulted: the operator's engine (a manager) need
    not hold the images at all, and a node runs exactly the recorded bytes or none.
    """
    if engine is None:
        return skipped(IMAGES, f"registry not asked: {engine_reason or 'no Docker engine'}")
    verdicts: list[tuple[Status, str]] = []
    for service, record in expected.items():
        pin = str(record.repo_digest)
        name = clipped(service)
        try:
            served = reg.served_digest(engine, pin, auth=auth)
        except OpsError as exc:
            verdicts.append((Status.FAIL, f"{name}: {exc.message}"))
            continue
        verdicts.append((Status.PASS, f"{name} {reg.digest_of(pin)[:19]}") if served else
                        (Status.FAIL, f"{name}: the registry does not serve {clipped(pin)}"))
    bad = [text for status, text in verdicts if status is Status.FAIL]
    if bad:
        return failed(IMAGES, listed(bad, shown=IMAGES_SHOWN, sep="; ", chars=SENTENCE_CHARS),
                      hint=f"push them: `invoke build {version.tag} --push` from the release tag")
    return passed(IMAGES, f"{len(verdicts)} image(s) served by the registry at their recorded "
                  "digests: " + listed((text for _, text in verdicts), shown=IMAGES_SHOWN,
                                       chars=SENTENCE_CHARS),
                  detail={"images": {s: r.repo_digest for s, r in expected.items()}})


# --- artifacts.registry_digests ------------------------------------------------------------------


def registry_finding(version: ReleaseVersion, expected: Mapping[str, mf.ImageRecord],
                     engine: Any | None, engine_reason: str | None, *,
                     auth: dict[str, str] | None) -> Finding:
    """The registry still serves each recorded digest, and the release tag still names it.

    A tag moved in the registry (someone pushed other bytes as ``app:v0.2.0``) fails even
    though a deploy by digest would not run them: it is the tampering this gate exists to see.
    """
    recorded = {s: r for s, r in expected.items() if r.repo_digest}
    if not recorded:
        return skipped(REGISTRY, "no image digest recorded (`invoke build VERSION --push` "
                       "records them)")
    if engine is None:
        return skipped(REGISTRY, f"registry not asked: {engine_reason or 'no Docker engine'}")
    problems: list[str] = []
    for service, record in recorded.items():
        pin = str(record.repo_digest)
        tag = split_reference(record.image)[1] or version.tag
        try:
            by_digest = reg.served_digest(engine, pin, auth=auth)
            by_tag = reg.served_digest(engine, reg.tag_reference(pin, tag), auth=auth)
        except OpsError as exc:
            problems.append(f"{clipped(service)}: {exc.message}")
            continue
        if by_digest is None:
            problems.append(f"{clipped(service)}: the registry does not serve {clipped(pin)}")
        elif by_tag is None:
            problems.append(f"{clipped(service)}: the registry no longer has the tag {tag}")
        elif by_tag != reg.digest_of(pin):
            problems.append(f"{clipped(service)}: {tag} now names {by_tag[:19]}…, the manifest "
                            f"recorded {reg.digest_of(pin)[:19]}…")
    if problems:
        return failed(REGISTRY, listed(problems, sep="; ", shown=IMAGES_SHOWN,
                                       chars=SENTENCE_CHARS),
                      hint="push the release again from its tag (`invoke build VERSION --push`) "
                           "and compare, or find who pushed over it")
    return passed(REGISTRY, f"{len(recorded)} image digest(s) served by the registry as recorded")


# --- the tamper gate -----------------------------------------------------------------------------


def tag_commits(root: Path, version: ReleaseVersion,
                repo: Any | None = None) -> tuple[str, list[str]] | None:
    """(commit the tag points at, its parents), or None without a repository or the tag."""

    if repo is None:
        try:
            repo = open_repo(root)
        except OpsError:
            return None
    try:
        ref = repo.tags[version.tag]
    except (IndexError, KeyError):
        return None
    commit = ref.commit
    return commit.hexsha, [p.hexsha for p in commit.parents]


def verify_release(root: Path, settings: Settings, version: ReleaseVersion, *,
                   use_cache: bool = True, engine: Any | None = None,
                   env: str = "production") -> list[Finding]:
    """Every check of a cut release: manifest, its checksum, each artifact, each image id
    (or, where ``env``'s nodes pull from its registry, each image digest the registry serves).

    ``engine`` is a docker client; without one, an engine is looked up and the image check is
    skipped (with the reason) when none answers. Fails where anything differs; the caller decides
    what a failure means (exit 1 for verify-release, a refused deploy for the gate). ``env``'s
    compose file is read only to explain images the release could not record.
    """
    root = resolve_path(Path.cwd(), root)
    record = load_record(root, settings, version)
    findings = manifest_findings(root, version, record, required=True,
                                 tag_commits=tag_commits(root, version),
                                 tagged=tagged_manifest(root, version, record.manifest_file))
    current = vfile.hash_checkpoints(root, settings, use_cache=use_cache)
    tagged_vf = tagged_version_file(root, version, record.version_file_path)
    findings.append(models_match_finding(root, settings, version, record, current,
                                         required=True, use_cache=use_cache,
                                         tagged_version=tagged_vf))
    manifest = record.manifest
    expected = manifest.docker_images if manifest is not None else {}
    reason = None
    if engine is None and expected:
        engine, reason = try_connect()
    if pulled_from_registry(settings, env, expected):
        finding = served_images_finding(version, expected, engine, reason,
                                        auth=reg.credentials(os.environ))
    else:
        finding = images_finding(
            version, expected, engine, reason,
            require_ids=manifest is not None and manifest.records_hashes,
            empty_reason=(f"{record.manifest_file.name} records no image" if manifest else
                          f"no {record.manifest_file.name}: no recorded image to check"),
            note=ids_note(manifest, record.manifest_file))
    compose_name, unpinned = unpinned_images(root, settings, version, env)
    findings.append(with_unpinned(finding, unpinned, version, compose_name))
    if any(r.repo_digest for r in expected.values()):
        findings.append(registry_finding(version, expected, engine, reason,
                                         auth=reg.credentials(os.environ)))
    return findings


def unpinned_images(root: Path, settings: Settings, version: ReleaseVersion,
                    env: str) -> tuple[str, list[ServiceImage]]:
    """(compose file name, its built images under a moving tag); a compose file that cannot be
    read explains nothing here (the manifest, not the compose file, is what the gate checks).

    Images compose names itself are never under a moving tag, so their names are not worked out
    (which would ask the compose CLI) and a placeholder stands in.
    """
    configured = settings.environments[env].compose_file if env in settings.environments else None
    compose = find_compose_file(root, configured)
    if compose is None:
        return "", []
    try:
        images = service_images(compose, version.tag, default_name=str)
    except OpsError:
        return compose.name, []
    return compose.name, [i for i in images if i.floating]
