"""Benchmark: tminus's hardcoded-secret scan against ``detect-secrets scan`` on the same tree.

Builds a temp git repository of thousands of generated source files with a few planted secrets
(and a few binary files), then in one run times

* ``detect-secrets scan --no-verify`` (the reference, in its own process, all cores),
* tminus's scan with a cold cache, and
* tminus's scan again with the warm cache,

checks that tminus reports exactly the findings detect-secrets reports (file, line, type), and
prints the ratios. Target (issue 7): at least 3x faster than detect-secrets.

The tree also holds what real repositories have and detect-secrets misreads: Alembic revision
files, lockfiles (npm, pnpm, Poetry, Go) and tminus's release files. The generator records every
line it wrote an id or a digest on; the expected findings are detect-secrets' minus those lines,
plus a key planted in a package-lock.json (detect-secrets skips lockfiles whole, tminus reads
them field by field).

    python benchmarks/bench_secrets.py [--files N] [--quick] [--keep DIR]

``--no-verify`` on the reference: tminus never sends a candidate secret to a third-party API
(detect-secrets' default verification would), and the machines running this have no internet.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Planted secrets, assembled at run time so this file itself never trips a scanner.
_AWS = "AKIA" + "J7QWERTYZX4PLMNB"  # pragma: allowlist secret
_GH = "ghp_" + "4fG7hJ2kL9mN3pQ6rS8tU1vW5xY0zA2bC4dE"  # pragma: allowlist secret
_STRIPE = "sk_live_" + "51HqLyjWDarjtT1zdp7dc0F4a"  # pragma: allowlist secret
_ENTROPY = "Zm9vYmFyYmF6cXV4" + "K3J1bm5lcjpAQ0RFRkdISUpLTE1OT1BRUlM="  # pragma: allowlist secret
_PASSWORD = "hunter2" + "-correct-horse"  # pragma: allowlist secret
_PEM = "-----BEGIN RSA " + "PRIVATE KEY-----"

WORDS = ("request", "response", "handler", "config", "value", "item", "result", "cache",
         "user", "order", "queue", "worker", "session", "token_count", "retry", "limit")


def _py_file(rng: random.Random, index: int) -> str:
    lines = [f'"""Generated module {index}."""', "from __future__ import annotations", ""]
    for n in range(rng.randint(8, 40)):
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        lines += [f"def {a}_{n}({b}: int, limit: int = {rng.randint(1, 99)}) -> str:",
                  f'    """Return the {a} for {b}."""',
                  f"    label = \"{a}-{b}-{n}\"",
                  f"    if {b} > limit:",
                  f"        return label + str({b})",
                  "    return label", ""]
    return "\n".join(lines) + "\n"


def _js_file(rng: random.Random, index: int) -> str:
    lines = [f"// generated file {index}", "'use strict';", ""]
    for n in range(rng.randint(8, 40)):
        a = rng.choice(WORDS)
        lines += [f"function {a}{n}(input) {{",
                  f"  const key = '{a}_{n}';",
                  "  if (!input) { return null; }",
                  f"  return {{ key, size: input.length * {rng.randint(2, 9)} }};",
                  "}", ""]
    return "\n".join(lines) + "\n"


def _go_file(rng: random.Random, index: int) -> str:
    lines = ["package gen", "", 'import "fmt"', ""]
    for n in range(rng.randint(5, 30)):
        a = rng.choice(WORDS)
        lines += [f"func {a.title()}{n}(x int) string {{",
                  f'\treturn fmt.Sprintf("{a}-%d", x*{rng.randint(2, 9)})',
                  "}", ""]
    return "\n".join(lines) + "\n"


def _md_file(rng: random.Random, index: int) -> str:
    lines = [f"# Notes {index}", ""]
    for _ in range(rng.randint(5, 25)):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(12)) + ".")
        lines.append("")
    return "\n".join(lines)


MAKERS = ((".py", _py_file), (".js", _js_file), (".go", _go_file), (".md", _md_file))

Known = set[tuple[str, int]]


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _sri(name: str) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(name.encode()).digest()).decode()


def _write_known(root: Path, rel: str, text: str, values: list[str], known: Known) -> None:
    """Write ``text`` and record each line holding one of the generated ids or digests."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    known.update((rel, number) for number, line in enumerate(text.splitlines(), 1)
                 if any(value in line for value in values))


def _revision(up: str, down: str | None) -> str:
    """An Alembic revision file as its type-annotated template (Alembic >= 1.13) writes it."""
    return (f'"""step {up}\n\nRevision ID: {up}\nRevises: {down or ""}\n'
            'Create Date: 2025-02-17 08:45:31.209114\n\n"""\n'
            "from typing import Sequence, Union\n\n"
            "from alembic import op\nimport sqlalchemy as sa\n"
            "\n\n# revision identifiers, used by Alembic.\n"
            f'revision: str = "{up}"\n'
            f"down_revision: Union[str, None] = {down!r}\n"
            "branch_labels: Union[str, Sequence[str], None] = None\n"
            "depends_on: Union[str, Sequence[str], None] = None\n\n\n"
            "def upgrade() -> None:\n    op.add_column('t', sa.Column('c', sa.Integer()))\n\n\n"
            "def downgrade() -> None:\n    op.drop_column('t', 'c')\n")


def build_layouts(root: Path, revisions: int) -> Known:
    """Migrations, lockfiles and release files; returns the lines holding ids and digests."""
    known: Known = set()
    down: str | None = None
    for number in range(revisions):
        up = _digest(f"revision {number}")[:12]
        _write_known(root, f"migrations/versions/{up}_step_{number}.py", _revision(up, down),
                     [up] + ([down] if down else []), known)
        down = up
    packages = [f"pkg-{n}" for n in range(60)]
    _write_known(root, "web/pnpm-lock.yaml", "lockfileVersion: '9.0'\n\npackages:\n\n" + "".join(
        f"  {p}@1.0.{n}:\n    resolution: {{integrity: {_sri(p)}}}\n\n"
        for n, p in enumerate(packages)), [_sri(p) for p in packages], known)
    lock = {"name": "web", "lockfileVersion": 3, "packages": {
        f"node_modules/{p}": {"version": "1.0.0", "integrity": _sri(p),
                              "resolved": f"https://registry.npmjs.org/{p}/-/{p}-1.0.0.tgz"}
        for p in packages}}
    text = json.dumps(lock, indent=2) + "\n"
    _write_known(root, "web/package-lock.json", text, [_sri(p) for p in packages], known)
    _write_known(root, "api/poetry.lock", "".join(
        f'[[package]]\nname = "{p}"\nversion = "1.0.0"\nfiles = [\n'
        f'    {{file = "{p}-1.0.0.tar.gz", hash = "sha256:{_digest(p)}"}},\n]\n\n'
        for p in packages) + f'[metadata]\ncontent-hash = "{_digest("pyproject")}"\n',
        [_digest(p) for p in packages] + [_digest("pyproject")], known)
    _write_known(root, "svc/go.sum", "".join(
        f"example.com/{p} v1.0.0 h1:{base64.b64encode(bytes.fromhex(_digest(p))).decode()}\n"
        for p in packages), [base64.b64encode(bytes.fromhex(_digest(p))).decode()
                             for p in packages], known)
    commit, model = hashlib.sha1(b"release").hexdigest(), _digest("model")  # noqa: S324
    _write_known(root, "checkpoints/VERSION_v0.2.0.txt",
                 f"# Checkpoint hashes of this release\nversion: v0.2.0\ncommit: {commit}\n"
                 f"date: 2025-10-14T15:30:00Z\n\nmodel_epoch_100.pt: {model}\n",
                 [commit, model], known)
    manifest = {"version": "v0.2.0", "git": {"commit": commit, "branch": "main"},
                "artifacts": [{"path": "checkpoints/model_epoch_100.pt", "sha256": model}],
                "docker_images": {"api": {"image": "shop/api:v0.2.0",
                                          "id": f"sha256:{_digest('api')}"}}}
    _write_known(root, "releases/manifest_v0.2.0.json", json.dumps(manifest, indent=2) + "\n",
                 [commit, model], known)
    return known

PLANTS = [
    ("aws.py", f'AWS_ACCESS_KEY_ID = "{_AWS}"\n'),
    ("github.js", f"const token = '{_GH}';\n"),
    ("billing.go", f'package gen\n\nvar stripeKey = "{_STRIPE}"\n'),
    ("blob.py", f'PAYLOAD = "{_ENTROPY}"\n'),
    ("settings.py", f'password = "{_PASSWORD}"\n'),
    ("deploy.md", f"Never do this:\n\n{_PEM}\n"),
    ("allowed.py", f'FIXTURE = "{_AWS}"  # pragma: allowlist secret\n'),
]
#: Planted where detect-secrets never looks (it skips lockfiles whole) and tminus must find it.
LOCKFILE_PLANT = ("web/package-lock.json", '"version": "1.0.0"', f'"version": "{_AWS}"')


def build_tree(root: Path, files: int, seed: int = 7) -> tuple[Known, set[tuple[str, int, str]]]:
    """A git repository with ``files`` generated files, the planted secrets and binary noise.

    Returns the lines holding generated ids and digests, and the findings only tminus reports.
    """
    rng = random.Random(seed)
    for index in range(files):
        ext, maker = MAKERS[index % len(MAKERS)]
        path = root / f"pkg{index % 40:02d}" / f"mod{index:05d}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(maker(rng, index), encoding="utf-8")
    for number, (name, text) in enumerate(PLANTS):
        target = root / f"pkg{number:02d}" / f"planted_{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_py_file(rng, number) + text if name.endswith(".py") else text,
                          encoding="utf-8")
    for number in range(5):
        (root / "assets").mkdir(exist_ok=True)
        (root / "assets" / f"blob{number}.bin").write_bytes(rng.randbytes(64 * 1024))
    known = build_layouts(root, max(10, files // 20))
    rel, old, new = LOCKFILE_PLANT
    text = (root / rel).read_text(encoding="utf-8")
    line = next(n for n, content in enumerate(text.splitlines(), 1) if old in content)
    (root / rel).write_text(text.replace(old, new, 1), encoding="utf-8")
    (root / "untracked_secret.py").write_text(f'KEY = "{_AWS}"\n', encoding="utf-8")
    (root / ".gitignore").write_text("untracked_secret.py\n.tminus/\n", encoding="utf-8")
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit",
                  "-q", "-m", "generated tree"]):
        subprocess.run(argv, cwd=root, check=True, capture_output=True)
    return known, {(rel, line, "AWS Access Key")}


def _children_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes and theirs."""
    times = os.times()
    return times.children_user + times.children_system


def reference_scan(root: Path) -> tuple[set[tuple[str, int, str]], float, float]:
    """``detect-secrets scan`` as a user runs it, in its own process (import time included)."""
    exe = Path(sys.executable).with_name("detect-secrets")
    argv = [str(exe) if exe.exists() else "detect-secrets", "scan", "--no-verify"]
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(argv, cwd=root, check=True, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu
    results = json.loads(done.stdout)["results"]
    found = {(name, item["line_number"], item["type"])
             for name, items in results.items() for item in items}
    return found, elapsed, cpu


def tminus_scan(root: Path, *,
                cache: bool) -> tuple[set[tuple[str, int, str]], float, float, int]:
    """tminus's scan in its own process too, so both sides pay for their imports."""
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "from pathlib import Path\n"
        "from ops.secretscan import ScanOptions, scan_repository\n"
        "r = scan_repository(Path(sys.argv[1]), ScanOptions(use_cache=sys.argv[2] == '1',"
        " baseline=None))\n"
        "print(json.dumps({'s': time.perf_counter() - t, 'scanned': r.scanned,"
        " 'f': [[f.path, f.line, f.kind] for f in r.findings]}))\n"
    )
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(root), "1" if cache else "0"],
                          cwd=Path(__file__).resolve().parents[1], check=True,
                          capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu
    data = json.loads(done.stdout)
    return {(p, n, k) for p, n, k in data["f"]}, elapsed, cpu, int(data["scanned"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="600 files instead of 3000")
    parser.add_argument("--keep", type=Path, help="build the tree here and keep it")
    args = parser.parse_args()
    files = 600 if args.quick else args.files

    base = args.keep or Path(tempfile.mkdtemp(prefix="tminus-bench-secrets-"))
    root = base / "tree"
    try:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        known, only_tminus = build_tree(root, files)
        shutil.rmtree(root / ".tminus", ignore_errors=True)
        reference, ref_s, ref_cpu = reference_scan(root)
        cold, cold_s, cold_cpu, scanned = tminus_scan(root, cache=True)
        warm, warm_s, warm_cpu, warm_scanned = tminus_scan(root, cache=True)
        nocache, nocache_s, nocache_cpu, _ = tminus_scan(root, cache=False)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    not_secrets = {hit for hit in reference if hit[:2] in known}
    expected = (reference - not_secrets) | only_tminus
    same = expected == cold == warm == nocache
    print(f"secret scan of {scanned} tracked text files (+5 binary skipped), "
          f"{len(expected)} findings; wall and CPU seconds (CPU: user+sys of all processes)")
    print(f"  detect-secrets' {len(reference)} findings, less {len(not_secrets)} on revision ids, "
          f"lockfile hashes and release digests, plus {len(only_tminus)} in a lockfile it skips")

    def row(label: str, wall: float, cpu: float, note: str = "") -> None:
        print(f"  {label:<31}: {wall:7.2f} s wall {ref_s / wall:6.1f}x | {cpu:7.2f} s CPU "
              f"{ref_cpu / cpu:6.1f}x{note}")

    print(f"  {'detect-secrets scan --no-verify':<31}: {ref_s:7.2f} s wall        | "
          f"{ref_cpu:7.2f} s CPU")
    row("tminus, cold cache", cold_s, cold_cpu)
    row("tminus, warm cache", warm_s, warm_cpu, f"  ({warm_scanned} files rescanned)")
    row("tminus, --no-cache", nocache_s, nocache_cpu)
    print(f"  same findings as detect-secrets: {'yes' if same else 'NO'} (less the known fields)")
    if not same:
        print("    only expected:", sorted(expected - cold))
        print("    only tminus  :", sorted(cold - expected))
    target = ref_s / cold_s >= 3.0
    print(f"  target >= 3x (cold)            : {'met' if target else 'NOT met'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
