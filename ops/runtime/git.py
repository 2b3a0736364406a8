"""Git through GitPython: open the repository, list tags, read files at a revision.

Opening raises a UsageError rather than GitPython's own exceptions, so a task run outside a
repository ends with one line instead of a traceback.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ops.errors import UsageError
from ops.versioning import ReleaseVersion, is_release_tag, parse_version

if TYPE_CHECKING:
    import git


def open_repo(root: Path) -> git.Repo:
    import git

    try:
        return git.Repo(root, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{root} is not a git repository",
                         hint="run tminus from the root of the service repository") from None


def release_tags(repo: git.Repo) -> dict[ReleaseVersion, git.TagReference]:
    """Every tag that is a release version, keyed by its parsed version."""
    return {parse_version(t.name): t for t in repo.tags if is_release_tag(t.name)}


def is_shallow(repo: git.Repo) -> bool:
    return (Path(repo.git_dir) / "shallow").exists()


def previous_release(repo: git.Repo, version: ReleaseVersion) -> git.TagReference | None:
    """The highest release tag strictly below ``version``: what "since the last release" means."""
    earlier = [v for v in release_tags(repo) if v < version]
    return release_tags(repo)[max(earlier)] if earlier else None


def file_at(repo: git.Repo, rev: str, path: str) -> str | None:
    """The text of ``path`` at ``rev``, or None when it did not exist there."""
    import git

    try:
        blob = repo.commit(rev).tree / path
    except (KeyError, ValueError, git.BadName):
        return None
    data: bytes = blob.data_stream.read()
    return data.decode("utf-8", errors="replace")


def worktree_changes(repo: git.Repo, paths: list[str] | None = None) -> list[tuple[str, str]]:
    """``(XY status, path)`` of every uncommitted change, untracked files included.

    Reads ``git status --porcelain -z`` so paths with spaces or newlines survive; ``paths``
    narrows the question to some pathspecs (e.g. the migrations folder).
    """
    args = ["--porcelain=v1", "-z", "--untracked-files=all"]
    if paths:
        args += ["--", *paths]
    fields = repo.git.status(*args, strip_newline_in_stdout=False).split("\0")
    changes: list[tuple[str, str]] = []
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            index += 1  # a rename or copy is followed by its original path
        changes.append((code, path))
    return changes


def tree_paths(repo: git.Repo, rev: str, directory: str) -> set[str] | None:
    """Repo-relative paths of the files under ``directory`` at ``rev``.

    None when ``rev`` does not resolve; an empty set when the directory did not exist then.
    """
    import git

    try:
        commit = repo.commit(rev)
    except (ValueError, git.BadName):
        return None
    try:
        tree = commit.tree / directory if directory not in ("", ".") else commit.tree
    except KeyError:
        return set()
    if not isinstance(tree, git.Tree):
        return set()
    return {str(item.path) for item in tree.traverse() if isinstance(item, git.Blob)}


def tracked_files(root: Path) -> list[str]:
    """Paths git tracks under ``root`` (``git ls-files -z``, so odd names survive intact).

    Raises UsageError when ``root`` is not inside a git work tree.
    """
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                              check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot list the files git tracks in {root}: {exc}") from None
    if done.returncode != 0:
        raise UsageError(f"{root} is not a git repository",
                         hint="run tminus from the root of the service repository")
    names = done.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    return [name for name in names if name]


def last_commit_date(repo: git.Repo, path: str) -> datetime | None:
    """When ``path`` last changed in the history of HEAD, or None when never committed."""
    import git

    try:
        commit = next(repo.iter_commits(paths=path, max_count=1), None)
    except (git.GitCommandError, ValueError):
        return None
    return commit.committed_datetime if commit is not None else None
