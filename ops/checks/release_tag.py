"""Section 1, Release Tag: is the thing about to be deployed exactly the tagged release?

The tag must exist, be annotated (it records who cut the release and when), point at the commit
checked out (otherwise the checks below judge something other than what ships), sit above every
earlier release, and come with its checkpoint VERSION file. A shallow clone hides tags, so there
the message says so instead of reporting a tag as missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ops.bounded import listed
from ops.checks import CheckContext
from ops.config import resolve_path
from ops.hashing import checkpoint_files
from ops.release import version_file as vfile
from ops.release.manifest import checksum_path, manifest_path
from ops.release.signoff import signoff_path
from ops.report import Finding, failed, passed, skipped, warned
from ops.runtime.git import git_failure, is_shallow, release_tags, worktree_changes

if TYPE_CHECKING:
    import git

#: How many dirty paths a worktree_clean warning names before it says "+N more".
SHOWN_PATHS = 5

UNSHALLOW = "shallow clone: tags may be missing, run `git fetch --unshallow --tags`"


def run(ctx: CheckContext) -> Iterator[Finding]:
    tag = ctx.version.tag
    yield passed("release_tag.format", f"{tag} is a valid release version (vMAJOR.MINOR.PATCH)")
    repo = ctx.repo
    if repo is None:
        yield failed("release_tag.exists", f"{ctx.root} is not a git repository: "
                     f"there is no tag {tag} to deploy",
                     hint="run predeploy from the root of the service's git checkout")
        for rest in ("annotated", "points_at_head", "commit", "worktree_clean", "monotonic"):
            yield skipped(f"release_tag.{rest}", "no git repository")
        yield from check_checkpoint_version(ctx)
        return
    ref = _tag(repo, tag) or release_tags(repo, ctx.settings.release.ignore_tags).get(ctx.version)
    yield from check_exists(ctx, repo, ref)
    if ref is None:
        for rest in ("annotated", "points_at_head", "commit"):
            yield skipped(f"release_tag.{rest}", f"tag {tag} does not exist")
    else:
        yield check_annotated(ref.name, ref)
        yield check_points_at_head(repo, ref.name, ref)
        yield check_commit(ref.name, ref)
    yield check_worktree_clean(ctx, repo)
    yield check_monotonic(ctx, repo)
    yield from check_checkpoint_version(ctx)


def _tag(repo: git.Repo, name: str) -> git.TagReference | None:
    for ref in repo.tags:
        if ref.name == name:
            return ref
    return None


def check_exists(ctx: CheckContext, repo: git.Repo,
                 ref: git.TagReference | None) -> Iterator[Finding]:
    tag = ctx.version.tag
    if ref is not None and ref.name != tag:
        # a team that tags 0.7.0 (or v0.23) releases v0.7.0 (v0.23.0): the same release
        yield passed("release_tag.exists", f"tag {ref.name} exists (release {tag})")
    elif ref is not None:
        yield passed("release_tag.exists", f"tag {tag} exists")
    elif is_shallow(repo):
        yield failed("release_tag.exists", f"tag {tag} not found — {UNSHALLOW}",
                     hint="in CI, fetch with full history (actions/checkout: fetch-depth: 0)")
    else:
        yield failed("release_tag.exists", f"tag {tag} does not exist",
                     hint=f"cut the release with `invoke create-release --version {tag}` "
                          f"(or `git tag -a {tag} -m \"release {tag}\"` on the commit to ship)")


def check_annotated(tag: str, ref: git.TagReference) -> Finding:
    annotation = ref.tag
    if annotation is None:
        return warned("release_tag.annotated",
                      f"{tag} is a lightweight tag: it records no author, date or message",
                      hint=f"recreate it annotated: `git tag -a -f {tag} -m \"release {tag}\" "
                           f"{ref.commit.hexsha[:12]}` (then push with --force)")
    tagger = getattr(annotation.tagger, "name", None) or "unknown"
    return passed("release_tag.annotated", f"{tag} is annotated (by {tagger})")


def check_points_at_head(repo: git.Repo, tag: str, ref: git.TagReference) -> Finding:
    tagged = ref.commit.hexsha
    try:
        head = repo.head.commit.hexsha
    except ValueError:
        return failed("release_tag.points_at_head", "HEAD has no commit yet",
                      hint=f"check out the release: `git checkout {tag}`")
    if tagged != head:
        return failed("release_tag.points_at_head",
                      f"{tag} points at {tagged[:8]} but HEAD is {head[:8]}: "
                      "these checks would judge something other than what ships",
                      hint=f"check out the release (`git checkout {tag}`) and run predeploy again")
    return passed("release_tag.points_at_head", f"{tag} is the checked-out commit (HEAD)")


def check_commit(tag: str, ref: git.TagReference) -> Finding:
    commit = ref.commit
    subject = str(commit.summary)
    return passed("release_tag.commit", f"{tag} → {commit.hexsha[:8]} {subject}".rstrip(),
                  detail={"commit": commit.hexsha})


def check_worktree_clean(ctx: CheckContext, repo: git.Repo) -> Finding:
    """Uncommitted changes warn, except the records tminus itself writes after the tag.

    build records image ids into the committed manifest after the release commit (and
    artifacts.manifest_integrity proves it changed nothing else); `checklist --sign-*` writes
    this release's sign-off record; every deploy, backup and incident appends to the audit log
    (committed by some teams, never by others). None of them changes what ships.

    An environment file (``.env``) is not a change to commit: it holds secrets, so the hint says
    to ignore it instead. A ``git status`` that fails is a failed finding in one line.
    """
    import git as gitlib

    manifest = manifest_path(ctx.root, ctx.settings, ctx.version)
    records = {
        ctx.shown(manifest): {"M"},
        ctx.shown(checksum_path(manifest)): {"M"},
        ctx.shown(signoff_path(ctx.root, ctx.settings, ctx.version.tag)): {"M", "??"},
        # every deploy, backup and incident appends to it, after the release commit
        ctx.shown(resolve_path(ctx.root, ctx.settings.audit_log)): {"M", "??"},
    }
    try:
        all_changes = worktree_changes(repo)
    except gitlib.GitCommandError as exc:
        problem = git_failure(exc)
        return failed("release_tag.worktree_clean",
                      f"cannot tell whether the working tree is clean: {problem.message}",
                      hint=problem.hint or "repair the repository until `git status` runs")
    changes = [(code, path) for code, path in all_changes
               if code.strip() not in records.get(path, set())]
    if not changes:
        note = " (apart from tminus's own records: image ids, sign-offs, the audit log)" \
            if all_changes else ""
        return passed("release_tag.worktree_clean", f"working tree is clean{note}")
    shown = listed((f"{path} ({_describe(code)})" for code, path in changes), SHOWN_PATHS)
    return warned("release_tag.worktree_clean",
                  f"{len(changes)} uncommitted change(s): {shown}",
                  hint=_worktree_hint(ctx, changes),
                  detail={"paths": [path for _, path in changes]})


def _worktree_hint(ctx: CheckContext, changes: list[tuple[str, str]]) -> str:
    """What to do with the changes: an env file is ignored (or untracked), never committed."""
    env_files = {ctx.shown(ctx.path(e.env_file)) for e in ctx.settings.environments.values()}

    def is_env_file(path: str) -> bool:
        return path in env_files or Path(path).name == ".env"

    untracked = [path for code, path in changes if code == "??" and is_env_file(path)]
    tracked = [path for code, path in changes if code != "??" and is_env_file(path)]
    advice = []
    if untracked:
        advice.append(f"add {', '.join(untracked)} to .gitignore: it holds the environment's "
                      "secrets and must never be committed")
    if tracked:
        advice.append(f"stop tracking {', '.join(tracked)} (`git rm --cached`), add it to "
                      ".gitignore and rotate the secrets it held")
    if len(changes) > len(untracked) + len(tracked):
        advice.append("commit or stash the other changes" if advice else
                      "commit or stash them, so what you check is what the tag holds")
    return "; ".join(advice)


def _describe(code: str) -> str:
    if code == "??":
        return "untracked"
    if "D" in code:
        return "deleted"
    if "A" in code:
        return "added"
    if "R" in code:
        return "renamed"
    return "modified"


def check_monotonic(ctx: CheckContext, repo: git.Repo) -> Finding:
    """Above every earlier release tag (``v1.2.0`` and ``1.2.0`` alike). A shallow clone with
    no earlier tag cannot tell a first release from a cut-off history, so it says that."""

    version = ctx.version
    tags = release_tags(repo, ctx.settings.release.ignore_tags)
    others = [v for v in tags if v != version]
    not_below = sorted((v for v in others if not v < version), reverse=True)
    if not_below:
        listed = ", ".join(tags[v].name for v in not_below[:SHOWN_PATHS])
        return failed("release_tag.monotonic",
                      f"{version} is not above every earlier release: {listed} "
                      f"{'exists' if len(not_below) == 1 else 'exist'}",
                      hint=f"release a version above {tags[not_below[0]].name} instead, or "
                           "list a mistyped tag in ops.release.ignore_tags")
    shallow = is_shallow(repo)
    if not others and shallow:
        return warned("release_tag.monotonic",
                      f"history is shallow: fetch tags to compare (no earlier release tag in "
                      f"this clone, so {version} cannot be shown to be above them)",
                      hint="`git fetch --unshallow --tags` (CI: fetch-depth 0)")
    note = f" ({UNSHALLOW})" if shallow else ""
    if not others:
        return passed("release_tag.monotonic", f"{version} is the first release{note}")
    return passed("release_tag.monotonic",
                  f"{version} is above every earlier release (previous: "
                  f"{tags[max(others)].name}){note}")


def check_checkpoint_version(ctx: CheckContext) -> Iterator[Finding]:
    """The release's VERSION file is there and names this release; a service that ships no
    checkpoint files needs none, so then its absence passes.

    Only the version line is read here (leniently, in either layout): whether the hashes hold is
    ``artifacts.models_match_release``'s question, and one bad line reported twice helps no one.
    """

    tag = ctx.version.tag
    folder = ctx.settings.artifacts.checkpoints_dir
    relative = folder / f"VERSION_{tag}.txt"
    path = ctx.path(relative)
    if path.is_file():
        try:
            found = vfile.parse(vfile.read_release_text(path), source=path.name, strict=False)
        except vfile.ReleaseFileError as exc:
            yield failed("release_tag.checkpoint_version", exc.message,
                         hint="restore it from git, or cut the release again")
            return
        if found.version and not vfile.names_version(found, ctx.version):
            yield failed("release_tag.checkpoint_version",
                         f"{relative} is for {found.version}, not {tag}",
                         hint=f"it was copied from another release; `invoke create-release "
                              f"--version {tag}` writes this release's")
        else:
            yield passed("release_tag.checkpoint_version", f"{relative} exists")
        return
    models = checkpoint_files(ctx.root, folder, ctx.settings.artifacts.patterns)
    if not models:
        yield passed("release_tag.checkpoint_version",
                     f"no checkpoint files under {folder.as_posix()}/ "
                     f"({' '.join(ctx.settings.artifacts.patterns)}): {tag} needs no VERSION file")
        return
    yield failed("release_tag.checkpoint_version",
                 f"{relative} is missing ({len(models)} checkpoint file(s) under "
                 f"{folder.as_posix()}/)",
                 hint=f"`invoke create-release --version {tag}` writes it "
                      "(version, commit, date and each checkpoint's sha256)")
