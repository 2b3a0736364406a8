"""Release tasks: create-release, build, verify-release.

Each task reads its flags, calls one function of ``ops.release`` and prints what it did; errors
become one line and an exit code through ``@boundary``.
"""

from __future__ import annotations

import shlex
import time

from invoke.context import Context
from invoke.tasks import task

from ops.release import create, verify
from ops.release.build import build_images, describe_plan, parse_build_args
from ops.report import Report, Section
from ops.taskkit import ReportOutput, boundary, optional_path, project_root, say, settings_from
from ops.versioning import parse_version


@task(
    auto_shortflags=False,
    help={
        "version": "release to cut, e.g. v0.2.0 (greater than every earlier release tag)",
        "push": "push the release commit and the tag to ops.release.remote (default origin)",
        "message": "tag message (the release notes) instead of generated notes",
        "notes-file": "read the tag message (the release notes) from this file",
        "dry-run": "change nothing; print what would be written, committed, tagged and pushed",
    },
)
@boundary
def create_release(c: Context, version: str, push: bool = False, message: str = "",
                   notes_file: str = "", dry_run: bool = False) -> None:
    """Cut a release: VERSION file, manifest + checksum, release commit, annotated tag."""
    settings = settings_from(c)
    result = create.create_release(project_root(c, settings), settings, parse_version(version),
                                   message=message or None, notes_file=optional_path(notes_file),
                                   push=push, dry_run=dry_run)
    if result.dry_run:
        say(f"[dry-run] would cut {result.version} from {result.source_commit[:12]} on "
            f"{result.branch}:")
        for step in result.steps:
            say(f"[dry-run]   {step}")
        say("[dry-run] nothing was changed")
        return
    say(f"Release {result.version} cut from {result.source_commit[:12]} on {result.branch}")
    for step in result.steps:
        say(f"  ✓ {step}")
    release_commit = result.release_commit or ""
    say(f"  tag {result.version} → {release_commit[:12]} (release commit; its parent "
        f"{result.source_commit[:12]} is the manifest's git.commit)")
    if result.images:
        say(f"Next: invoke build {result.version}, then invoke predeploy --version "
            f"{result.version}")
    else:
        say(f"Next: invoke predeploy --version {result.version}")


@task(
    auto_shortflags=False,
    iterable=["service", "build_arg"],
    help={
        "version": "release whose images to build, e.g. v0.2.0",
        "service": "build only this service (repeatable); default: every service whose "
                   "image reference carries the version",
        "no-cache": "build without the engine's layer cache",
        "build-arg": "KEY=VALUE build argument, overriding the compose file's (repeatable)",
        "env": "environment whose compose file is used (default: production)",
        "dry-run": "print the equivalent docker build commands; build nothing",
        "push": "also push the release images to the environment's registry and record their "
                "content digests (credentials: TMINUS_REGISTRY_USERNAME/PASSWORD or docker "
                "login)",
    },
)
@boundary
def build(c: Context, version: str, service: list[str] | None = None, no_cache: bool = False,
          build_arg: list[str] | None = None, env: str = "production",
          dry_run: bool = False, push: bool = False) -> None:
    """Build and tag the release's service images; record their ids in the manifest."""
    settings = settings_from(c)
    result = build_images(project_root(c, settings), settings, parse_version(version),
                          services=service or (), no_cache=no_cache, dry_run=dry_run,
                          build_args=parse_build_args(build_arg or ()), env=env, on_line=say,
                          push=push)
    if not result.plans:
        say(f"no service image carries {result.version} in its reference: nothing to build "
            "(name one with --service)")
        return
    if result.dry_run:
        for plan in result.plans:
            say(f"[dry-run] {describe_plan(plan, no_cache=no_cache)}")
        for argv in result.push_argv():
            say(f"[dry-run] {shlex.join(argv)}")
        if result.manifest_note:
            say(f"[dry-run] {result.manifest_note}")
        else:
            say(f"[dry-run] would record image ids in manifest_{result.version}.json")
        return
    for image in result.built:
        say(f"  ✓ {image.service}: {image.reference} {image.id}")
        if image.pushed:
            say(f"    pushed as {image.repo_digest}")
    if result.manifest is not None:
        say(f"Recorded image ids in {result.manifest.name} and rewrote its .sha256 "
            "(commit them to keep the release record)")
    elif result.manifest_note:
        say(f"Note: {result.manifest_note}")


@task(
    auto_shortflags=False,
    help={
        "version": "release to verify, e.g. v0.2.0",
        "output": "also write the findings to this file (.json → JSON, .xml → JUnit)",
        "format": "report format: text, json or junit (default: from --output's extension)",
        "no-cache": "re-hash every file instead of trusting the hash cache",
    },
)
@boundary
def verify_release(c: Context, version: str, output: str = "", format: str = "",
                   no_cache: bool = False) -> None:
    """Check a release against its manifest: checksum, every artifact hash, every image id."""
    release = parse_version(version)
    report_output = ReportOutput.chosen(format, output)
    settings = settings_from(c)
    root = project_root(c, settings)
    started = time.perf_counter()
    findings = verify.verify_release(root, settings, release, use_cache=not no_cache)
    elapsed = time.perf_counter() - started
    report = Report(release=release.tag, project=str(root), kind="verify-release",
                    sections=[Section("artifacts", "Release Verification", findings, elapsed)],
                    duration_s=elapsed)
    report_output.finish(report, f"{release.tag} does not match its release record")

