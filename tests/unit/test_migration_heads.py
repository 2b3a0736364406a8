"""What a deploy learns about a release image's migrations without starting a container:
the revision files out of the image's tar stream, and the heads remembered by image id."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from ops.deploy.backend import heads_cache_path, read_heads_cache, write_heads_cache
from ops.runtime.alembic_scripts import ScriptGraph, judge, revisions_in_texts
from ops.runtime.image_files import tar_texts

FIRST = 'revision = "0001"\ndown_revision = None\n\ndef upgrade():\n    pass\n'
SECOND = 'revision = "0002"\ndown_revision = "0001"\n\ndef upgrade():\n    pass\n'


def archive(files: dict[str, str], *, link: str | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return raw.getvalue()


def test_the_revision_files_of_an_image_give_its_head_without_running_anything() -> None:
    texts = tar_texts(archive({"versions/0001_first.py": FIRST,
                            "versions/0002_second.py": SECOND,
                            "versions/README": "not python"}), ".py")
    assert texts is not None and sorted(texts) == ["versions/0001_first.py",
                                                   "versions/0002_second.py"]
    graph = ScriptGraph(None, revisions_in_texts(texts))
    judge(graph)
    assert graph.sound and graph.heads == ("0002",)


def test_only_regular_files_are_read_from_the_image(tmp_path: Path) -> None:
    texts = tar_texts(archive({"versions/0001_first.py": FIRST}, link="versions/evil.py"), ".py")
    assert texts == {"versions/0001_first.py": FIRST}


def test_a_stream_that_is_no_tar_reads_as_nothing_known() -> None:
    assert tar_texts(b"not a tar archive at all" * 40, ".py") is None


def test_heads_are_remembered_by_image_id_in_an_ignored_cache(tmp_path: Path) -> None:
    path = heads_cache_path(tmp_path)
    write_heads_cache(path, {"sha256:aaa": ("0002",)})
    assert read_heads_cache(path) == {"sha256:aaa": ("0002",)}
    assert (path.parent / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_cache_file_that_is_not_what_tminus_wrote_counts_as_nothing_learnt(
        tmp_path: Path) -> None:
    path = heads_cache_path(tmp_path)
    path.parent.mkdir(parents=True)
    for junk in ("[1, 2]", "{not json", '{"sha256:aaa": "0002", "sha256:bbb": []}'):
        path.write_text(junk)
        assert read_heads_cache(path) == {}
