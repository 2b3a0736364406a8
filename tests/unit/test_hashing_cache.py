"""The hash cache: an unchanged file is not read again; any change to its size, mtime, ctime,
inode or device makes the engine read it again. Proven by the engine's count of files read,
never by timing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from ops.config import ArtifactsSettings, Settings
from ops.hashing import CACHE_FILE, CHUNK, HashCache, hash_files, hash_many

HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def settled(path: Path, data: bytes, mtime_ns: int = HOUR_AGO_NS) -> Path:
    """A file last modified long ago: the only kind the cache may trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def cached_run(cache_file: Path, *paths: Path, trust: bool = True) -> tuple[int, int]:
    """(files read, cache hits) of one run through a fresh HashCache on ``cache_file``."""
    run = hash_many(paths, cache=HashCache(cache_file, trust=trust))
    return run.files_read, run.cache_hits


def test_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / "cache" / CACHE_FILE
    assert cached_run(cache_file, model) == (1, 0)
    assert cached_run(cache_file, model) == (0, 1)


def test_cached_digest_is_the_digest_of_the_file(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", os.urandom(CHUNK + 5))
    cache = HashCache(tmp_path / CACHE_FILE)
    hash_files([model], cache=cache)
    again = hash_many([model], cache=HashCache(tmp_path / CACHE_FILE))
    assert again.digests == {model: hashlib.sha256(model.read_bytes()).hexdigest()}
    assert again.files_read == 0


def test_size_change_is_read_again(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    settled(model, b"weights, retrained")  # same mtime, other size
    assert cached_run(cache_file, model) == (1, 0)


def test_mtime_change_is_read_again(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    settled(model, b"WEIGHTS", mtime_ns=HOUR_AGO_NS + 1)  # same size, mtime one ns later
    assert cached_run(cache_file, model) == (1, 0)


def test_same_size_rewrite_with_restored_mtime_is_caught_by_ctime(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    first_ctime = model.stat().st_ctime_ns
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    settled(model, b"WEIGHTS")  # same size, same mtime: only the ctime tells
    while model.stat().st_ctime_ns == first_ctime:  # within one clock tick: touch until it moves
        time.sleep(0.001)
        os.utime(model, ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    run = hash_many([model], cache=HashCache(cache_file))
    assert run.files_read == 1
    assert run.digests[model] == hashlib.sha256(b"WEIGHTS").hexdigest()


def test_file_replaced_by_another_inode_is_read_again(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    replacement = settled(tmp_path / "model.pt.new", b"weights")
    replacement.replace(model)  # same bytes, size and mtime: a new inode
    assert cached_run(cache_file, model) == (1, 0)


def test_entry_recorded_on_another_device_is_not_trusted(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    stored = json.loads(cache_file.read_text())
    stored["entries"][str(model)]["dev"] += 1  # as if the path now lived on another filesystem
    cache_file.write_text(json.dumps(stored))
    assert cached_run(cache_file, model) == (1, 0)


def test_file_modified_within_the_racy_window_is_not_cached(tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"just written")  # its mtime is now: a rewrite could keep it
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    assert cached_run(cache_file, model) == (1, 0)


def test_file_growing_while_it_is_read_is_not_cached(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", os.urandom(2 * CHUNK))
    cache_file = tmp_path / CACHE_FILE

    def append_once(count: int) -> None:
        del count
        if model.stat().st_size == 2 * CHUNK:
            with model.open("ab") as handle:
                handle.write(b"more")
            os.utime(model, ns=(HOUR_AGO_NS, HOUR_AGO_NS))

    hash_many([model], cache=HashCache(cache_file), progress=append_once)
    assert cached_run(cache_file, model) == (1, 0)


def test_no_cache_reads_everything_and_refreshes_the_entries(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, model)
    assert cached_run(cache_file, model, trust=False) == (1, 0)
    assert cached_run(cache_file, model) == (0, 1)


def test_corrupt_cache_file_is_an_empty_cache_then_rewritten(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    cache_file = tmp_path / CACHE_FILE
    cache_file.write_text("{ half a json")
    assert cached_run(cache_file, model) == (1, 0)
    assert cached_run(cache_file, model) == (0, 1)


def test_unwritable_cache_location_still_returns_the_digests(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    digests = hash_files([model], cache=HashCache(blocker / CACHE_FILE))
    assert digests == {model: hashlib.sha256(b"weights").hexdigest()}


def test_entries_of_deleted_files_are_dropped_on_save(tmp_path: Path) -> None:
    kept = settled(tmp_path / "kept.pt", b"a")
    gone = settled(tmp_path / "gone.pt", b"b")
    cache_file = tmp_path / CACHE_FILE
    cached_run(cache_file, kept, gone)
    gone.unlink()
    cached_run(cache_file, settled(tmp_path / "new.pt", b"c"))
    assert sorted(json.loads(cache_file.read_text())["entries"]) == [
        str(tmp_path / "kept.pt"), str(tmp_path / "new.pt")]


def test_two_processes_saving_keep_each_others_entries(tmp_path: Path) -> None:
    one = settled(tmp_path / "one.pt", b"1")
    two = settled(tmp_path / "two.pt", b"2")
    cache_file = tmp_path / CACHE_FILE
    first, second = HashCache(cache_file), HashCache(cache_file)
    assert len(first) == len(second) == 0  # both loaded before either saved
    hash_files([one], cache=first)
    hash_files([two], cache=second)
    assert cached_run(cache_file, one, two) == (0, 2)


def test_project_cache_lives_under_the_configured_cache_dir(tmp_path: Path) -> None:
    model = settled(tmp_path / "checkpoints" / "model.pt", b"weights")
    cache = HashCache.for_project(tmp_path, Settings())
    assert cache is not None
    hash_files([model], cache=cache)
    stored = json.loads((tmp_path / ".tminus" / "cache" / "hashes.json").read_text())
    assert stored["entries"][str(model)]["sha256"] == hashlib.sha256(b"weights").hexdigest()


def test_cache_switched_off_in_settings_gives_no_cache(tmp_path: Path) -> None:
    settings = Settings(artifacts=ArtifactsSettings(cache=False))
    assert HashCache.for_project(tmp_path, settings) is None


def test_cache_stays_out_of_git_status_without_a_gitignore_entry(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    model = settled(tmp_path / "checkpoints" / "model.pt", b"weights")
    subprocess.run(["git", "-C", str(tmp_path), "add", "checkpoints"], check=True)
    cache = HashCache.for_project(tmp_path, Settings())
    hash_files([model], cache=cache)
    status = subprocess.run(["git", "-C", str(tmp_path), "status", "--porcelain",
                             "--untracked-files=all"], capture_output=True, text=True, check=True)
    assert (tmp_path / ".tminus" / "cache" / CACHE_FILE).is_file()
    assert status.stdout.splitlines() == ["A  checkpoints/model.pt"]


def test_cache_in_an_existing_directory_leaves_its_gitignore_alone(tmp_path: Path) -> None:
    model = settled(tmp_path / "model.pt", b"weights")
    hash_files([model], cache=HashCache(tmp_path / CACHE_FILE))  # e.g. cache_dir: "."
    assert not (tmp_path / ".gitignore").exists()
