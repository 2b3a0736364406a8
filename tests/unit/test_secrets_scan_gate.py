"""The scan's shortcut never hides what detect-secrets would find.

tminus rules files out with each plugin's own patterns before handing the rest to
detect-secrets' ``scan_file``. Here a corpus of awkward files (anchors at line edges, trailing
blanks, CRLF, case tricks, transformer-shaped files, undecodable bytes) is scanned both ways in
a temp git repository and the results must be identical.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ops.secretscan import ScanOptions, configure_detect_secrets, scan_repository

AWS = "AKIA" + "J7QWERTYZX4PLMNB"
B64 = "Zm9vYmFyYmF6cXV4" + "K3J1bm5lcjpAQ0RFRkdISUpLTE1OT1BRUlM="  # pragma: allowlist secret
HEX = "9f86d081884c7d65" + "9a2feaa0c55ad015"  # pragma: allowlist secret
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
       + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
ARTIFACTORY = "AKC" + "p8jQ2nN5xyzABCDEFGHJ"

CORPUS: dict[str, str | bytes] = {
    "first_line.py": f'KEY = "{AWS}"\nprint(1)\n',
    "last_line_no_newline.py": f'print(1)\nKEY = "{AWS}"',
    "trailing_blanks.py": f"x = 1\ntoken = '{B64}'   \t \n",
    "crlf.js": f'const a = 1;\r\nconst apiKey = "{B64}";\r\n',
    "artifactory_edges.txt": f"{ARTIFACTORY}\nnote {ARTIFACTORY}   \n",
    "upper_password.py": 'PASSWORD = "hunter2-correct-horse"\n',  # pragma: allowlist secret
    "kelvin_key.py": 'api_\u212aey = "abcdefgh12345678"\n',
    "hex.go": f'package x\n\nvar h = "{HEX}"\n',
    "jwt.java": f'String t = "{JWT}";\n',
    # pragma: allowlist nextline secret
    "basic_auth.md": "Connect with postgres://admin:s3cretpass@db.internal:5432/app\n",
    "public_ip.conf": "upstream = 8.8.4.4\n",
    "values.yaml": f"service:\n  token: {B64}\n",
    "app.ini": f"[auth]\nsecret = {B64}\n",
    "env_like.txt": f"API_TOKEN: {B64}\nDEBUG=1\n",
    "allowlisted.py": f'K = "{AWS}"  # pragma: allowlist secret\n',
    "latin1.py": b"# caf\xe9\nKEY = '" + AWS.encode() + b"'\n",
    "keywords_only.py": "def get_password(key):\n    return lookup(key)\n",
    "repeated.py": f'A = "{AWS}"\nB = 2\nC = "{AWS}"\n',
    "prose.md": "# Title\n\nNothing to see here, only words about secrets.\n",
}


def _repo(root: Path) -> Path:
    root.mkdir()
    for name, content in CORPUS.items():
        target = root / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_bytes(content.encode("utf-8"))
    for argv in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(argv, cwd=root, check=True, capture_output=True)
    return root


def _detect_secrets_directly(root: Path) -> set[tuple[str, int, str]]:
    """What ``detect-secrets scan`` reports: its collection keeps one entry per (file, type,
    secret), the first one seen."""
    from detect_secrets.core.secrets_collection import SecretsCollection

    configure_detect_secrets(None)
    collection = SecretsCollection(root=str(root))
    for name in CORPUS:
        collection.scan_file(name)
    return {(name, s.line_number, s.type) for name, s in collection}


def test_gate_finds_exactly_what_detect_secrets_scan_file_finds(tmp_path: Path) -> None:
    root = _repo(tmp_path / "corpus")
    expected = _detect_secrets_directly(root)
    found = scan_repository(root, ScanOptions(baseline=None, use_cache=False))
    assert {(h.path, h.line, h.kind) for h in found.findings} == expected
    assert len({name for name, _, _ in expected}) >= 10  # the corpus really does hold secrets


def test_parallel_scan_finds_the_same_as_the_in_process_scan(tmp_path: Path) -> None:
    root = _repo(tmp_path / "corpus")
    for copy in range(80):  # above the threshold where worker processes start
        (root / f"copy{copy}.py").write_text(f'KEY = "{AWS}"\n', encoding="utf-8")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    serial = scan_repository(root, ScanOptions(baseline=None, use_cache=False, workers=1))
    parallel = scan_repository(root, ScanOptions(baseline=None, use_cache=False, workers=2))
    assert serial.findings == parallel.findings
    assert len(serial.findings) > 80
