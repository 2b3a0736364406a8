"""Benchmark: tminus's hardcoded-secret scan against ``detect-secrets scan`` on the same tree.

Builds a temp git repository of thousands of generated source files with a few planted secrets
(and a few binary files), then in one run times

* ``detect-secrets scan --no-verify`` (the reference, in its own process, all cores),
* tminus's scan with a cold cache, and
* tminus's scan again with the warm cache,

checks that tminus reports exactly the findings detect-secrets reports (file, line, type), and
prints the ratios. Target (issue 7): at least 3x faster than detect-secrets.

    python benchmarks/bench_secrets.py [--files N] [--quick] [--keep DIR]

``--no-verify`` on the reference: tminus never sends a candidate secret to a third-party API
(detect-secrets' default verification would), and the machines running this have no internet.
"""

from __future__ import annotations

import argparse
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

PLANTS = [
    ("aws.py", f'AWS_ACCESS_KEY_ID = "{_AWS}"\n'),
    ("github.js", f"const token = '{_GH}';\n"),
    ("billing.go", f'package gen\n\nvar stripeKey = "{_STRIPE}"\n'),
    ("blob.py", f'PAYLOAD = "{_ENTROPY}"\n'),
    ("settings.py", f'password = "{_PASSWORD}"\n'),
    ("deploy.md", f"Never do this:\n\n{_PEM}\n"),
    ("allowed.py", f'FIXTURE = "{_AWS}"  # pragma: allowlist secret\n'),
]


def build_tree(root: Path, files: int, seed: int = 7) -> None:
    """A git repository with ``files`` generated files, the planted secrets and binary noise."""
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
    (root / "untracked_secret.py").write_text(f'KEY = "{_AWS}"\n', encoding="utf-8")
    (root / ".gitignore").write_text("untracked_secret.py\n.tminus/\n", encoding="utf-8")
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit",
                  "-q", "-m", "generated tree"]):
        subprocess.run(argv, cwd=root, check=True, capture_output=True)


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
        build_tree(root, files)
        shutil.rmtree(root / ".tminus", ignore_errors=True)
        reference, ref_s, ref_cpu = reference_scan(root)
        cold, cold_s, cold_cpu, scanned = tminus_scan(root, cache=True)
        warm, warm_s, warm_cpu, warm_scanned = tminus_scan(root, cache=True)
        nocache, nocache_s, nocache_cpu, _ = tminus_scan(root, cache=False)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    same = reference == cold == warm == nocache
    print(f"secret scan of {scanned} tracked text files (+5 binary skipped), "
          f"{len(reference)} findings; wall and CPU seconds (CPU: user+sys of all processes)")

    def row(label: str, wall: float, cpu: float, note: str = "") -> None:
        print(f"  {label:<31}: {wall:7.2f} s wall {ref_s / wall:6.1f}x | {cpu:7.2f} s CPU "
              f"{ref_cpu / cpu:6.1f}x{note}")

    print(f"  {'detect-secrets scan --no-verify':<31}: {ref_s:7.2f} s wall        | "
          f"{ref_cpu:7.2f} s CPU")
    row("tminus, cold cache", cold_s, cold_cpu)
    row("tminus, warm cache", warm_s, warm_cpu, f"  ({warm_scanned} files rescanned)")
    row("tminus, --no-cache", nocache_s, nocache_cpu)
    print(f"  same findings as detect-secrets: {'yes' if same else 'NO'}")
    if not same:
        print("    only detect-secrets:", sorted(reference - cold))
        print("    only tminus        :", sorted(cold - reference))
    target = ref_s / cold_s >= 3.0
    print(f"  target >= 3x (cold)            : {'met' if target else 'NOT met'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
