"""Git through GitPython: open the repository, list tags, read files at a revision.

Opening raises a UsageError rather than GitPython's own exceptions, so a task run outside a
repository ends with one line instead of a traceback.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ops.bounded import NAME_CHARS, clipped
from ops.errors import UsageError
from ops.versioning import ReleaseVersion, version_of_tag

if TYPE_CHECKING:
    import git


def open_repo(root: Path) -> git.Repo:
    import git

    try:
        return git.Repo(root, search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UsageError(f"{root} is not a git repository",
                         hint="run tminus from the root of the service repository") from None


def release_tags(repo: git.Repo,
                 ignore: Sequence[str] = ()) -> dict[ReleaseVersion, git.TagReference]:
    """Every tag that names a release version (``v1.2.0`` or ``1.2.0``), keyed by that version.

    When both spellings of one version exist, the ``v`` tag (the one tminus writes) wins.
    ``ignore`` are globs of tags that are not releases (ops.release.ignore_tags): one mistyped
    upstream tag would otherwise be "the latest release" for ever.
    """
    found: dict[ReleaseVersion, git.TagReference] = {}
    for tag in sorted(repo.tags, key=lambda t: t.name.startswith("v")):
        if any(fnmatch.fnmatchcase(tag.name, pattern) for pattern in ignore):
            continue
        version = version_of_tag(tag.name)
        if version is not None:
            found[version] = tag
    return found


def is_shallow(repo: git.Repo) -> bool:
    return (Path(repo.git_dir) / "shallow").exists()


def previous_release(repo: git.Repo, version: ReleaseVersion,
                     ignore: Sequence[str] = ()) -> git.TagReference | None:
    """The highest release tag strictly below ``version``: what "since the last release" means."""
    tags = release_tags(repo, ignore)
    earlier = [v for v in tags if v < version]
    return tags[max(earlier)] if earlier else None


def nearest_tag(repo: git.Repo, rev: str, exclude: str) -> str | None:
    """The closest tag reachable from ``rev`` other than ``exclude`` (``git describe``): the
    comparison base when a project's tags are not versions at all."""
    import subprocess

    done = subprocess.run(["git", "-C", str(repo.working_tree_dir or repo.git_dir), "describe",
                           "--tags", "--abbrev=0", f"--exclude={exclude}", rev],
                          capture_output=True, text=True, check=False, timeout=60)
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None


def python_sources_mentioning(repo: git.Repo, rev: str, needle: str,
                              limit_bytes: int = 1 << 20) -> dict[str, str] | None:
    """``{path: text}`` of the ``*.py`` files at ``rev`` that contain ``needle``.

    Two processes whatever the tree's size (``git grep`` names the files, one ``cat-file
    --batch`` reads them), so comparing a release tag's migrations with HEAD's costs the same in a
    monorepo as in a toy. None when ``rev`` cannot be read; files over ``limit_bytes`` are left
    out (a revision file is a few KiB).
    """
    import subprocess

    base = ["git", "-C", str(repo.working_tree_dir or repo.git_dir)]
    try:
        listed = subprocess.run([*base, "grep", "-l", "-z", "-F", "-e", needle, rev, "--",
                                 "*.py"], capture_output=True, check=False, timeout=120)
        if listed.returncode not in (0, 1):
            return None
        prefix = f"{rev}:"
        paths = [p.removeprefix(prefix) for p in
                 listed.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
        if not paths:
            return {}
        request = "".join(f"{rev}:{p}\n" for p in paths).encode("utf-8", "surrogateescape")
        batch = subprocess.run([*base, "cat-file", "--batch"], input=request,
                               capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if batch.returncode != 0:
        return None
    return _batch_texts(batch.stdout, paths, limit_bytes)


def _batch_texts(out: bytes, paths: list[str], limit_bytes: int) -> dict[str, str]:
    """Parse ``git cat-file --batch`` output: ``<sha> <type> <size>\\n<content>\\n`` each."""
    texts: dict[str, str] = {}
    offset = 0
    for path in paths:
        end = out.find(b"\n", offset)
        if end < 0:
            break
        header = out[offset:end].split()
        offset = end + 1
        if len(header) != 3:  # "<object> missing"
            continue
        size = int(header[2])
        if header[1] == b"blob" and size <= limit_bytes:
            texts[path] = out[offset:offset + size].decode("utf-8", "replace")
        offset += size + 1
    return texts


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


def work_tree_top(start: Path) -> Path | None:
    """The top level of the git work tree holding ``start``; None outside one (or where git
    refuses to read it). Where a task looks for the project when no tasks.py says where it is."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"],
                              capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    top = done.stdout.strip()
    return Path(top) if done.returncode == 0 and top else None


# --- a failed git command, in one line -----------------------------------------------------------

#: The longest summary of a failed git command: one terminal line. GitPython's own message
#: repeats the whole command line and every line git printed (kilobytes for a ``git log`` with
#: a format string), which is noise to the person who has to act on it.
GIT_ERROR_LIMIT = 200
#: Options of git itself that take their value as the next argument (``git -C dir log``).
_VALUE_OPTIONS = frozenset({"-c", "-C", "--git-dir", "--work-tree", "--namespace",
                            "--exec-path", "--config-env"})
_SAFE_DIRECTORY = re.compile(r"git config --global --add safe\.directory [^\s\"']+")


class GitFailed(UsageError):
    """A git command failed. The cause is the repository (a corrupt or partial clone, an index
    git cannot read) or git's own setup (a checkout owned by another user that git refuses
    until it is a ``safe.directory``): something to fix before tminus can read it, so exit 2."""


def git_stderr(exc: BaseException) -> str:
    """git's own stderr lines from a GitCommandError (GitPython wraps them as
    ``\\n  stderr: '…'``), blank lines dropped."""
    text = str(getattr(exc, "stderr", "") or "").strip()
    text = text.removeprefix("stderr:").strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


def git_subcommand(command: object) -> str | None:
    """``log`` for ``['/usr/bin/git', '-c', 'k=v', 'log', '--format=…']``: which git command
    failed, without its arguments (they can be long, and paths in them may be private)."""
    if isinstance(command, str):
        argv = command.split()
    elif isinstance(command, list | tuple):
        argv = [str(arg) for arg in command]
    else:
        return None
    args = iter(argv[1:])
    for arg in args:
        if arg in _VALUE_OPTIONS:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def git_failure(exc: BaseException) -> GitFailed:
    """The one-line GitFailed for GitPython's error: ``git log failed: fatal: bad object …``.

    The line is git's verdict: its first ``fatal:`` line, else its first ``error:`` line, else
    its first line that is not a ``hint:``; bounded to GIT_ERROR_LIMIT characters. git's own
    advice to mark the directory safe becomes the hint.
    """
    lines = git_stderr(exc).splitlines()
    if not lines and not hasattr(exc, "command"):  # GitPython's ValueError from its object reader
        lines = str(exc).strip().splitlines()
    status = getattr(exc, "status", None)
    reason = _first_meaningful(lines) or (f"exit status {status}" if status is not None
                                          else type(exc).__name__)
    if hasattr(exc, "command"):
        subcommand = git_subcommand(exc.command)
        what = f"git {subcommand}" if subcommand else "git"
    else:
        what = "reading the repository"
    advice = _SAFE_DIRECTORY.search("\n".join(lines) or str(exc))
    return GitFailed(_bounded(f"{what} failed: {reason}"),
                     hint=f"`{advice.group(0)}`" if advice else None)


@contextmanager
def git_errors() -> Iterator[None]:
    """Let a failed git command leave as one line (GitFailed), never as GitPython's multi-line
    error. Also usable as a decorator (``@git_errors()``) on a function that runs git.

    GitPython's object reader reports a repository git refuses (another user's checkout) as a
    ValueError naming "dubious ownership"; that one is translated too, any other ValueError is
    left alone.
    """
    import git

    try:
        yield
    except git.GitCommandError as exc:
        raise git_failure(exc) from None
    except ValueError as exc:
        if "dubious ownership" not in str(exc):
            raise
        raise git_failure(exc) from None


def ensure_git_reads(repo: git.Repo) -> None:
    """Ask git once whether it will work in ``repo``; GitFailed (one line, git's advice as the
    hint) when it refuses.

    GitPython opens a repository by reading files, so a checkout git refuses (owned by another
    user and not a ``safe.directory``, as a volume mounted into a container often is) otherwise
    surfaces later as misleading symptoms: HEAD "has no commits", a tag "is unknown", a broken
    pipe from GitPython's object reader.
    """
    with git_errors():
        repo.git.rev_parse("--git-dir")


def _first_meaningful(lines: list[str]) -> str | None:
    cleaned = [" ".join(line.split()) for line in lines if line.strip()]
    for marker in ("fatal:", "error:"):
        found = next((line for line in cleaned if line.lower().startswith(marker)), None)
        if found is not None:
            return found
    return next((line for line in cleaned if not line.lower().startswith("hint:")),
                cleaned[0] if cleaned else None)


def _bounded(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= GIT_ERROR_LIMIT else text[:GIT_ERROR_LIMIT - 1] + "…"


# --- the release cut, in plumbing ----------------------------------------------------------------
#
# create-release must never leave a release commit without its tag, staged release files, or a
# second release commit stacked on an orphaned one, whatever signal arrives when. So it builds
# the release commit with a private index (the real index is never staged), tags it, and only
# then moves the branch with a compare-and-swap: each step is one git command, and a run killed
# between any two leaves a state the next run recognises (``ReleaseState``). The commands run in
# their own session, so the terminal's Ctrl-C reaches tminus alone, which finishes or undoes the
# step in hand instead of losing a half-written ref under a dead child.


def plumb(root: Path, *args: str, env: dict[str, str] | None = None,
          stdin: bytes | None = None) -> str:
    """One git command in ``root``, outside the terminal's process group; GitFailed on error."""
    import os
    import subprocess

    argv = ["git", "-C", str(root), *args]
    try:
        done = subprocess.run(argv, capture_output=True, input=stdin, check=False, timeout=300,
                              env={**os.environ, **(env or {})}, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitFailed(_bounded(f"git {args[0]} failed: {type(exc).__name__}")) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").splitlines()
        reason = _first_meaningful(lines) or f"exit status {done.returncode}"
        raise GitFailed(_bounded(f"git {args[0]} failed: {reason}"))
    return done.stdout.decode("utf-8", "replace").strip()


def commit_files(root: Path, parent: str, paths: list[str], message: str) -> str:
    """A commit object: ``parent``'s tree plus ``paths`` as they are on disk. Nothing but the
    object database changes; the branch, HEAD and the real index stay where they are."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tminus-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        plumb(root, "read-tree", parent, env=env)
        plumb(root, "add", "--force", "--", *paths, env=env)
        tree = plumb(root, "write-tree", env=env)
    return plumb(root, "commit-tree", tree, "-p", parent, "-F", "-", stdin=message.encode())


def tag_commit(root: Path, name: str, commit: str, message: str) -> None:
    """An annotated tag, its message through stdin (release notes outgrow an argv: E2BIG)."""
    # verbatim: Markdown headings in the notes start with "#", which git would strip
    plumb(root, "tag", "-a", "--cleanup=verbatim", "-F", "-", name, commit,
          stdin=message.encode())


def move_branch(root: Path, branch: str, new: str, old: str) -> None:
    """``refs/heads/branch`` from ``old`` to ``new`` only if it is still at ``old``."""
    plumb(root, "update-ref", "-m", f"tminus: release {new[:12]}", f"refs/heads/{branch}",
          new, old)


def delete_tag(root: Path, name: str) -> None:
    plumb(root, "tag", "-d", name)


def commit_subject(root: Path, rev: str) -> str | None:
    try:
        return plumb(root, "log", "-1", "--format=%s", rev)
    except GitFailed:
        return None


def tag_target(root: Path, name: str) -> str | None:
    """The commit ``name`` points at, or None when there is no such tag."""
    try:
        return plumb(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}")
    except GitFailed:
        return None


def parents(root: Path, rev: str) -> list[str]:
    return plumb(root, "rev-list", "--parents", "-n", "1", rev).split()[1:]


def changed_paths(root: Path, old: str, new: str) -> list[str]:
    out = plumb(root, "diff", "--name-only", "-z", old, new)
    return [p for p in out.split("\0") if p]


def paths_in_tree(root: Path, rev: str, names: list[str]) -> set[str]:
    """Which of ``names`` (paths relative to ``root``) ``rev``'s tree holds."""
    return set(plumb(root, "ls-tree", "--name-only", rev, "--", *names).splitlines())


def reset_paths(root: Path, rev: str, names: list[str]) -> None:
    """The index entries of ``names`` back to ``rev``'s; the work tree is left alone."""
    plumb(root, "reset", "-q", rev, "--", *names)


def restore_path(root: Path, rev: str, name: str) -> None:
    """The work-tree (and index) copy of ``name`` as ``rev`` has it."""
    plumb(root, "checkout", rev, "--", name)


def remote_names(repo: git.Repo) -> set[str]:
    return {remote.name for remote in repo.remotes}


def push_atomic(repo: git.Repo, remote: str, refs: Sequence[str]) -> str | None:
    """Push ``refs`` together (``--atomic``: the remote takes all or none). None when pushed;
    git's own stderr lines when the push failed, for the caller to tell the person why."""
    import git

    try:
        repo.git.push("--atomic", remote, *refs)
    except git.GitCommandError as exc:
        return git_stderr(exc)
    return None


@dataclass(frozen=True)
class LogEntry:
    sha: str
    author: str
    date: str  # ISO 8601, as git prints ``%aI``
    message: str
    paths: list[str]


def commit_log(repo: git.Repo, rev: str) -> list[LogEntry]:
    """Every non-merge commit of ``rev`` (a range ``a..b`` or one revision), oldest first, with
    its author, ISO date, full message and the paths it touched: one ``git log`` call."""
    raw = repo.git.log(rev, "--reverse", "--no-merges", "-z", "--name-only",
                       "--format=%x1e%H%x1f%an%x1f%aI%x1f%B%x1d")
    entries = []
    for chunk in raw.split("\x1e"):
        if not chunk.strip("\0\n"):
            continue
        header, _, names = chunk.partition("\x1d")
        sha, author, date, body = [*header.split("\x1f", 3), "", "", ""][:4]
        paths = [n.strip("\n") for n in names.split("\0") if n.strip("\n")]
        entries.append(LogEntry(sha, author, date, body, paths))
    return entries


def resolve_commit(repo: git.Repo, ref: str) -> git.Commit:
    """The commit ``ref`` (a user's ``--from``/``--to``) names, or a usage error (exit 2) saying
    why it names none.

    git itself resolves the name (``rev-parse --verify --end-of-options``): GitPython's own
    parser raises whatever it meets (``KeyError`` for ``HEAD:../../etc/passwd``, ``IndexError``
    for ``@{-1}``, ``NotImplementedError`` for ``main@{yesterday}``), and a name starting with
    ``-`` must never be read as an option. Only a commit, or an annotated tag of one, is a
    revision the notes can start or end at: a tree, a blob or a tag of either is refused.
    """
    import git

    shown = repr(ref) if len(ref) <= NAME_CHARS else f"'{clipped(ref)}'"
    try:
        sha = repo.git.rev_parse("--verify", "--quiet", "--end-of-options", ref)
        kind = repo.git.cat_file("-t", sha)
        if kind == "tag":
            target = repo.git.rev_parse("--verify", "--quiet", f"{sha}^{{}}")
            kind = repo.git.cat_file("-t", target)
            if kind != "commit":
                raise UsageError(f"tag {shown} points at a {kind}, not a commit",
                                 hint="release notes run between commits or tags of commits")
            sha = target
    except git.GitCommandError:
        shallow = (Path(repo.git_dir) / "shallow").exists()
        hint = ("this is a shallow clone: fetch the tags with `git fetch --tags --unshallow`"
                if shallow else "list release tags with `git tag --list 'v*'`")
        raise UsageError(f"unknown revision {shown}", hint=hint) from None
    if kind != "commit":
        raise UsageError(f"{shown} names a {kind}, not a commit",
                         hint="release notes run between commits or tags of commits")
    return repo.commit(sha)


# --- blobs at a commit (release notes read old trees) --------------------------------------------


def blob_text(commit: git.Commit, path: str) -> str | None:
    """The text of ``path`` in ``commit``'s tree; None when it is not a file there."""
    try:
        blob = commit.tree / path
    except KeyError:
        return None
    if blob.type != "blob":
        return None
    data: bytes = blob.data_stream.read()
    return data.decode("utf-8", errors="replace")


def blob_bytes_under(commit: git.Commit, folder: str,
                     patterns: Sequence[str]) -> Iterable[tuple[str, bytes]]:
    """(path, bytes) of the files under ``folder`` in ``commit``'s tree whose names match one
    of ``patterns``; symlinks are never followed."""
    import git

    try:
        tree = commit.tree / folder
    except KeyError:
        return
    if not isinstance(tree, git.Tree):
        return
    for item in tree.traverse():
        if not isinstance(item, git.Blob) or item.mode == git.Blob.link_mode:  # never symlinks
            continue
        path = str(item.path)
        if any(fnmatch.fnmatch(PurePosixPath(path).name, p) for p in patterns):
            data: bytes = item.data_stream.read()
            yield path, data
