"""Cutting a release: VERSION file, manifest and checksum, a release commit, an annotated tag.

The order is what makes an interrupted run harmless, whatever signal arrives when: every file is
written atomically; the release commit is built with a private index (the real index is never
staged); the tag is created on it; only then does the branch move to it, by compare-and-swap.
So the branch never holds a release commit without its tag. A run killed between two steps leaves
either leftover release files (removed by the next run) or a tag on a commit the branch has not
reached yet (the next run moves the branch: the release is completed, never cut twice). Ctrl-C and
SIGTERM are held while the four steps run, then honoured (exit 130).

The VERSION file is written in the T-1 document's layout (``ops.release.version_file.render``),
and only when there are checkpoint files: a service that ships none needs none.

"commit" in the VERSION file and the manifest is the *source* commit the release was cut from.
The release commit that adds those files is its only child, and the tag points at the release
commit: ``git rev-parse vX.Y.Z^`` equals the manifest's ``git.commit``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ops.atomic import atomic_write_text
from ops.bounded import listed
from ops.config import Settings, resolve_path
from ops.errors import ExitCode, Interrupted, OpsError, UsageError
from ops.release import manifest as mf
from ops.release import version_file as vfile
from ops.release.build import compose_images
from ops.release.notes import notes_for_release
from ops.runtime.git import (
    GitFailed,
    changed_paths,
    commit_files,
    commit_subject,
    delete_tag,
    ensure_git_reads,
    git_errors,
    is_shallow,
    move_branch,
    open_repo,
    parents,
    paths_in_tree,
    plumb,
    push_atomic,
    release_tags,
    remote_names,
    reset_paths,
    restore_path,
    tag_commit,
    tag_target,
    worktree_changes,
)
from ops.runtime.process import fault_point, signals_deferred
from ops.stamps import utc_stamp
from ops.versioning import ReleaseVersion

if TYPE_CHECKING:
    import git


class ReleaseFailed(OpsError):
    """Cutting or pushing the release did not complete (exit 1)."""

    exit_code = ExitCode.FAILED


@dataclass
class ReleaseResult:
    version: str
    branch: str
    source_commit: str
    release_commit: str | None  # None under --dry-run
    version_file: Path | None  # None: no checkpoint files, so no VERSION file
    manifest: Path
    checksum: Path
    checkpoint_count: int
    checkpoint_bytes: int
    images: dict[str, str]
    notes: str
    pushed_to: str | None = None
    dry_run: bool = False
    steps: list[str] = field(default_factory=list)  # what was (or would be) done, in order


@git_errors()  # a git command failing anywhere in here ends as one line (GitFailed, exit 2)
def create_release(root: Path, settings: Settings, release: ReleaseVersion, *,
                   message: str | None = None, notes_file: Path | None = None, push: bool = False,
                   dry_run: bool = False) -> ReleaseResult:
    """Cut ``release`` from HEAD; refuses with a UsageError (exit 2) before touching anything."""
    if message and notes_file:
        raise UsageError("give either --message or --notes-file, not both")
    root = resolve_path(Path.cwd(), root)
    repo = open_repo(root)
    ensure_git_reads(repo)  # a checkout git refuses is said so, not "has no commits yet"
    branch = _preconditions(repo, settings, release)
    leftovers: list[str] = []
    if not dry_run:
        completed = _resume(repo, root, settings, release, branch)
        if completed is not None:
            return _completed(repo, root, settings, release, branch, completed, message,
                              notes_file)
        leftovers = _remove_leftovers(repo, root, settings, release)
    _refusals(repo, settings, release)
    notes = _tag_message(root, settings, release, message, notes_file)
    source = repo.head.commit.hexsha

    current = vfile.hash_checkpoints(root, settings)
    vf_path = vfile.version_file_path(root, settings, release)
    manifest_file = mf.manifest_path(root, settings, release)
    for path in (vf_path, manifest_file):
        _inside(root, path)
    now = utc_stamp()
    artifacts = [mf.Artifact(_inside(root, p), current.sizes[p], h)
                 for p, h in sorted(current.hashes.items())]
    vf_text: str | None = None
    if current.hashes:
        vf_text = vfile.render(vfile.VersionFile(release.tag, source, now, current.by_name()))
        artifacts.append(mf.Artifact(_inside(root, vf_path), len(vf_text.encode("utf-8")),
                                     _sha256_text(vf_text), kind="version_file"))
    images = release_images(root, settings, release)
    manifest = mf.Manifest(release.tag, now, mf.GitInfo(source, branch, release.tag), artifacts,
                           {s: mf.ImageRecord(ref) for s, ref in images.items()})
    checksum = mf.checksum_path(manifest_file)
    paths = [vf_path, manifest_file, checksum] if vf_text is not None else [manifest_file,
                                                                             checksum]
    result = ReleaseResult(release.tag, branch, source, None,
                           vf_path if vf_text is not None else None, manifest_file, checksum,
                           len(current.hashes), current.total_bytes, images, notes,
                           dry_run=dry_run)
    checkpoints = _inside(root, vf_path.parent)
    result.steps = [
        f"write {_inside(root, vf_path)} ({result.checkpoint_count} checkpoint file(s), "
        f"{result.checkpoint_bytes} bytes)" if vf_text is not None else
        f"no checkpoint files under {checkpoints}/: no VERSION file to write",
        f"write {_inside(root, manifest_file)} and {_inside(root, checksum)} "
        f"({len(artifacts)} artifact(s), {len(images)} image(s))",
        f"commit them on {branch} as `chore(release): {release.tag}` (child of {source[:12]})",
        f"create annotated tag {release.tag} on that commit",
    ]
    if push:
        result.steps.append(f"push {branch} and {release.tag} to {settings.release.remote}")
    if leftovers:
        result.steps.insert(0, "removed what an interrupted create-release left: "
                               + ", ".join(sorted(leftovers)))
    if dry_run:
        return result

    result.release_commit = _commit_and_tag(repo, release, source, root, paths, notes,
                                            lambda: _write(vf_path, vf_text, manifest_file,
                                                           manifest), branch)
    if push:
        push_release(repo, settings.release.remote, branch, release.tag)
        result.pushed_to = settings.release.remote
    return result


def _preconditions(repo: git.Repo, settings: Settings, release: ReleaseVersion) -> str:
    """Where a release can be cut at all, cheapest first; returns the branch being released."""

    if is_shallow(repo):
        raise UsageError("this is a shallow clone, so earlier release tags may be hidden",
                         hint="run `git fetch --tags --unshallow` first")
    if not repo.head.is_valid():
        raise UsageError("the repository has no commits yet: nothing to release",
                         hint="commit the service first")
    if repo.head.is_detached:
        raise UsageError("HEAD is detached: check out a release branch first",
                         hint="allowed: " + ", ".join(settings.release.branches))
    branch = repo.active_branch.name
    if branch not in settings.release.branches:
        raise UsageError(f"branch {branch!r} is not a release branch",
                         hint="allowed: " + ", ".join(settings.release.branches)
                         + " (ops.release.branches)")
    return branch


def _refusals(repo: git.Repo, settings: Settings, release: ReleaseVersion) -> None:
    """What a new release may not start from: its tag, a higher release, uncommitted work."""

    if release.tag in {t.name for t in repo.tags}:
        raise UsageError(f"tag {release.tag} already exists",
                         hint="choose a higher version; a published tag is never moved")
    tags = release_tags(repo, settings.release.ignore_tags)
    if tags and max(tags) >= release:
        latest = tags[max(tags)].name
        raise UsageError(f"{release.tag} is not greater than the latest release {latest}",
                         hint="release versions only go up (SemVer order)")
    cache = settings.artifacts.cache_dir.as_posix().rstrip("/") + "/"
    dirty = [path for path in _uncommitted(repo) if not path.startswith(cache)]
    if dirty:
        raise UsageError(f"uncommitted changes: {listed(dirty)}",
                         hint="commit or stash them; a release is cut from a committed tree")


def _uncommitted(repo: git.Repo) -> list[str]:
    return [str(path) for _, path in worktree_changes(repo)]


def _tag_message(root: Path, settings: Settings, release: ReleaseVersion,
                 message: str | None, notes_file: Path | None) -> str:
    if message:
        body = message.strip()
    elif notes_file is not None:
        path = resolve_path(Path.cwd(), notes_file)
        try:
            body = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read notes file {notes_file} "
                             f"({type(exc).__name__})") from None
    else:
        body = notes_for_release(root, settings, release).strip()
    return f"Release {release.tag}\n\n{body}\n" if body else f"Release {release.tag}\n"


def release_images(root: Path, settings: Settings, release: ReleaseVersion,
                   env: str = "production") -> dict[str, str]:
    """Service → image reference for each built image whose reference carries the version.

    That includes services compose names itself (no ``image:``: ``<project>-<service>``, tagged
    with the release). Built images with a fixed reference (a locally built ``db:15``) are
    infrastructure, not part of the release; rebuilding them for a later release would change
    ids this one recorded.
    """

    _, images = compose_images(root, settings, release.tag, env)
    return {img.service: img.reference for img in images if img.versioned}


def _inside(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        raise UsageError(f"{path} is outside the project {root}",
                         hint="keep checkpoints_dir and releases_dir inside the repository"
                         ) from None


def _sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write(vf_path: Path, vf_text: str | None, manifest_file: Path,
           manifest: mf.Manifest) -> None:
    if vf_text is not None:
        atomic_write_text(vf_path, vf_text)
    mf.write(manifest_file, manifest)


def _commit_and_tag(repo: git.Repo, release: ReleaseVersion, source: str, root: Path,
                    paths: list[Path], notes: str, write: Callable[[], None],
                    branch: str) -> str:
    """Write, commit (private index), tag, move the branch; undo all of it on any failure."""
    names = [_inside(root, p) for p in paths]
    tagged = False
    try:
        with signals_deferred():
            write()
            fault_point("create-release:written")
            commit = commit_files(root, source, names, f"chore(release): {release.tag}\n\n"
                                  f"Release files for {release.tag}, cut from {source}.")
            fault_point("create-release:committed")
            tag_commit(root, release.tag, commit, notes)
            tagged = True
            fault_point("create-release:tagged")
            move_branch(root, branch, commit, source)
            fault_point("create-release:moved")
            plumb(root, "reset", "-q", "--", *names)  # the real index agrees with the new HEAD
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {release.tag} was completed first (tag and branch at "
                          "the release commit)") from None
    except BaseException as exc:
        _undo(repo, source, root, paths, release.tag if tagged else None)
        if isinstance(exc, GitFailed):
            raise ReleaseFailed(f"could not commit and tag {release.tag}: {exc.message}",
                                hint="nothing was released; fix the cause and run again") from None
        if isinstance(exc, OSError):
            raise ReleaseFailed(f"could not write the release files: {exc.strerror or exc}",
                                hint="nothing was released") from None
        raise
    return commit


def _undo(repo: git.Repo, source: str, root: Path, paths: list[Path],
          tag: str | None) -> None:
    """Back to the source commit: no tag, the release files and the index as they were."""
    import git as gitlib

    names = [_inside(root, p) for p in paths]
    try:
        if tag is not None and repo.head.commit.hexsha == source:
            delete_tag(root, tag)
        in_source = paths_in_tree(root, source, names)
        reset_paths(root, source, names)
    except (gitlib.GitCommandError, GitFailed):
        return
    for name, path in zip(names, paths, strict=True):
        if name in in_source:
            restore_path(root, source, name)
        else:
            path.unlink(missing_ok=True)
    for directory in {p.parent for p in paths}:
        if directory != root and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


# --- a release an earlier run left half-made -----------------------------------------------------


def _completed(repo: git.Repo, root: Path, settings: Settings, release: ReleaseVersion,
               branch: str, commit: str, message: str | None,
               notes_file: Path | None) -> ReleaseResult:
    """The result of finishing an interrupted release (tagging it when an older run did not)."""
    steps = [f"completed the release an interrupted run left half-made: {branch} → "
             f"{commit[:12]}"]
    if tag_target(root, release.tag) is None:
        tag_commit(root, release.tag, commit,
                   _tag_message(root, settings, release, message, notes_file))
        steps.append(f"created annotated tag {release.tag} on that commit")
    source = parents(root, commit)[0]
    manifest_file = mf.manifest_path(root, settings, release)
    version_file = vfile.version_file_path(root, settings, release)
    return ReleaseResult(release.tag, branch, source, commit,
                         version_file if version_file.is_file() else None, manifest_file,
                         mf.checksum_path(manifest_file), 0, 0, {}, "", steps=steps)


def _release_names(root: Path, settings: Settings, release: ReleaseVersion) -> set[str]:
    """The repo-relative paths create-release writes for ``release``."""
    manifest_file = mf.manifest_path(root, settings, release)
    return {_inside(root, vfile.version_file_path(root, settings, release)),
            _inside(root, manifest_file), _inside(root, mf.checksum_path(manifest_file))}


def _resume(repo: git.Repo, root: Path, settings: Settings, release: ReleaseVersion,
            branch: str) -> str | None:
    """Finish a release an interrupted run left half-made; the release commit, or None.

    The half-made states this module's order allows: the tag on a release commit whose parent
    is HEAD and that adds only this release's files, the branch not there yet; or the branch
    there, the index not yet. (An older tminus could also leave a release commit at HEAD without
    its tag: it gets its tag.)
    """
    head = repo.head.commit.hexsha
    target = tag_target(root, release.tag)
    subject = f"chore(release): {release.tag}"
    if target is None:
        ours = commit_subject(root, "HEAD") == subject and \
            not _orphan_is_foreign(root, settings, release)
        return head if ours else None
    if target == head:
        return _sync_index(root, settings, release, head) \
            if commit_subject(root, "HEAD") == subject else None
    if parents(root, target) != [head] or commit_subject(root, target) != subject or \
            not set(changed_paths(root, head, target)) <= _release_names(root, settings,
                                                                          release):
        return None
    move_branch(root, branch, target, head)
    names = changed_paths(root, head, target)
    plumb(root, "reset", "-q", "--", *names)
    plumb(root, "checkout", "--", *names)
    return target


def _sync_index(root: Path, settings: Settings, release: ReleaseVersion,
                head: str) -> str | None:
    """Killed after the branch moved, before the index caught up: catch it up."""
    names = sorted(_release_names(root, settings, release))
    stale = plumb(root, "diff", "--cached", "--name-only", "HEAD", "--", *names)
    if not stale:
        return None
    plumb(root, "reset", "-q", "--", *stale.splitlines())
    return head


def _orphan_is_foreign(root: Path, settings: Settings, release: ReleaseVersion) -> bool:
    """True unless HEAD's only changes are this release's files (a hand-made commit that
    merely reuses the subject is not ours to tag)."""
    parent = parents(root, "HEAD")
    if len(parent) != 1:
        return True
    return not set(changed_paths(root, parent[0], "HEAD")) <= _release_names(root, settings,
                                                                              release)


def _remove_leftovers(repo: git.Repo, root: Path, settings: Settings,
                      release: ReleaseVersion) -> list[str]:
    """Delete this release's files that an interrupted run wrote but never committed."""
    names = _release_names(root, settings, release)
    leftovers = [path for code, path in worktree_changes(repo) if path in names
                 and code in {"??", "A ", "AM"}]
    if leftovers:
        plumb(root, "reset", "-q", "--", *leftovers)
        for name in leftovers:
            (root / name).unlink(missing_ok=True)
    return leftovers


def push_release(repo: git.Repo, remote: str, branch: str, tag: str) -> None:
    """Push the branch and the tag together (``--atomic``): the remote gets both or neither."""
    retry = f"git push --atomic {remote} {branch} refs/tags/{tag}"
    if remote not in remote_names(repo):
        raise ReleaseFailed(f"{tag} was created locally, but there is no remote {remote!r}",
                            hint=f"add it (`git remote add {remote} URL`), then `{retry}`")
    refused = push_atomic(repo, remote, [f"refs/heads/{branch}", f"refs/tags/{tag}"])
    if refused is not None:
        reason = _push_reason(refused)
        raise ReleaseFailed(f"push to {remote} was rejected ({reason}); the release commit and "
                            f"tag {tag} are kept locally",
                            hint=f"fix the cause, then retry with `{retry}`; if {remote}/"
                                 f"{branch} has moved on, `git tag -d {tag}`, integrate the "
                                 "remote work and cut the release again")


def _push_reason(stderr: str) -> str:
    """The most telling line of git's push output: the rejection, else the fatal error."""
    lines = [" ".join(line.strip().lstrip("!").split()) for line in stderr.splitlines()]
    for marker in ("rejected", "fatal:", "error:"):
        found = next((line for line in lines if marker in line), None)
        if found:
            return found[:160]
    return "git push failed"


__all__ = ["ReleaseFailed", "ReleaseResult", "create_release", "push_release",
           "release_images"]
