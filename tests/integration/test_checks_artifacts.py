"""The predeploy artifacts section on real repositories: one planted defect per finding id."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.checks import CheckContext, run_predeploy
from ops.checks.artifacts import run
from ops.config import Settings
from ops.release.create import create_release
from ops.report import Finding, Status
from ops.versioning import parse_version
from tests.conftest import GitRepo

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("checkpoints/model.pt", b"w" * 2048)
    git_repo.write("checkpoints/tokenizer.bin", b"tok")
    git_repo.commit("feat: models")
    return git_repo


def released(repo: GitRepo, version: str = "v0.2.0") -> GitRepo:
    create_release(repo.path, Settings(), parse_version(version))
    return repo


def check(repo: GitRepo, version: str = "v0.2.0",
          settings: Settings | None = None) -> dict[str, Finding]:
    ctx = CheckContext(root=repo.path, settings=settings or Settings(),
                       version=parse_version(version))
    return {f.id: f for f in run(ctx)}


def test_clean_release_passes_every_artifact_check_that_applies(repo: GitRepo) -> None:
    found = check(released(repo))
    assert {k: f.status for k, f in found.items()} == {
        "artifacts.models_hashed": Status.PASS,
        "artifacts.models_match_release": Status.PASS,
        "artifacts.images": Status.SKIP,
        "artifacts.manifest": Status.PASS,
        "artifacts.manifest_integrity": Status.PASS,
    }


def test_models_hashed_reports_count_and_bytes(repo: GitRepo) -> None:
    finding = check(repo)["artifacts.models_hashed"]
    assert finding.message == "2 checkpoint file(s) in checkpoints/ hashed (2.0 KiB)"
    assert finding.detail is not None
    assert (finding.detail["count"], finding.detail["bytes"]) == (2, 2051)


def test_no_checkpoint_files_is_a_skip_with_the_patterns(git_repo: GitRepo) -> None:
    git_repo.commit("empty")
    finding = check(git_repo)["artifacts.models_hashed"]
    assert finding.status is Status.SKIP
    assert "*.pt" in finding.message


def test_symlink_out_of_the_repository_is_never_hashed(repo: GitRepo, tmp_path: Path) -> None:
    outside = tmp_path / "secret.pt"
    outside.write_bytes(b"outside")
    (repo.path / "checkpoints/link.pt").symlink_to(outside)
    finding = check(repo)["artifacts.models_hashed"]
    assert finding.detail is not None
    assert "link.pt" not in finding.detail["files"]


def test_changed_checkpoint_fails_models_match_release_only(repo: GitRepo) -> None:
    released(repo)
    (repo.path / "checkpoints/tokenizer.bin").write_bytes(b"changed")
    found = check(repo)
    failing = [k for k, f in found.items() if f.status is Status.FAIL]
    assert failing == ["artifacts.models_match_release"]
    assert "changed tokenizer.bin" in found["artifacts.models_match_release"].message


def test_version_file_alone_is_compared_when_no_manifest_exists(repo: GitRepo) -> None:
    released(repo)
    (repo.path / "releases/manifest_v0.2.0.json").unlink()
    (repo.path / "checkpoints/model.pt").unlink()
    finding = check(repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert finding.message == "checkpoints differ from release v0.2.0: missing model.pt"


def test_malformed_version_file_fails_models_match_release_naming_the_line(
        repo: GitRepo) -> None:
    released(repo)
    (repo.path / "releases/manifest_v0.2.0.json").unlink()
    (repo.path / "checkpoints/VERSION_v0.2.0.txt").write_text(
        "version: v0.2.0\ncommit: x\ndate: d\n\nmodel.pt: nothex\n")
    finding = check(repo)["artifacts.models_match_release"]
    assert finding.status is Status.FAIL
    assert "VERSION_v0.2.0.txt:5: 'model.pt' has no valid sha256" in finding.message


def test_unreleased_version_skips_comparison_and_warns_which_task_writes_the_manifest(
        repo: GitRepo) -> None:
    found = check(repo)
    assert found["artifacts.models_match_release"].status is Status.SKIP
    manifest = found["artifacts.manifest"]
    assert manifest.status is Status.WARN
    assert manifest.message == "releases/manifest_v0.2.0.json does not exist"
    assert manifest.hint == "`invoke create-release v0.2.0` writes it"
    assert found["artifacts.manifest_integrity"].status is Status.SKIP


def test_edited_manifest_fails_manifest_integrity(repo: GitRepo) -> None:
    released(repo)
    path = repo.path / "releases/manifest_v0.2.0.json"
    path.write_text(path.read_text() + " ")
    found = check(repo)
    assert found["artifacts.manifest_integrity"].status is Status.FAIL
    assert found["artifacts.manifest"].status is Status.PASS


def test_manifest_of_another_release_fails_the_manifest_check(repo: GitRepo) -> None:
    released(repo, "v0.1.0")
    releases = repo.path / "releases"
    for suffix in ("json", "sha256"):
        text = (releases / f"manifest_v0.1.0.{suffix}").read_text()
        (releases / f"manifest_v0.2.0.{suffix}").write_text(
            text.replace("manifest_v0.1.0.json", "manifest_v0.2.0.json"))
    finding = check(repo)["artifacts.manifest"]
    assert finding.status is Status.FAIL
    assert finding.message == "releases/manifest_v0.2.0.json is for v0.1.0, not v0.2.0"


def test_configured_checkpoints_dir_and_patterns_are_used(git_repo: GitRepo) -> None:
    git_repo.write("models/net.weights", b"123")
    git_repo.write("checkpoints/ignored.pt", b"x")
    git_repo.commit("feat: models")
    settings = Settings.model_validate(
        {"artifacts": {"checkpoints_dir": "models", "patterns": ["*.weights"]}})
    create_release(git_repo.path, settings, parse_version("v0.2.0"))
    assert (git_repo.path / "models/VERSION_v0.2.0.txt").is_file()
    found = check(git_repo, settings=settings)
    assert found["artifacts.models_hashed"].message.startswith("1 checkpoint file(s) in models/")
    assert found["artifacts.models_match_release"].status is Status.PASS


def test_artifacts_section_runs_inside_predeploy(repo: GitRepo) -> None:
    released(repo)
    ctx = CheckContext(root=repo.path, settings=Settings(), version=parse_version("v0.2.0"))
    report = run_predeploy(ctx, only=["artifacts"])
    assert [s.id for s in report.sections] == ["artifacts"]
    assert report.sections[0].status is Status.PASS


# --- images the compose file names ---------------------------------------------------------------


def test_built_image_under_latest_warns_that_the_release_tag_cannot_be_applied(
        repo: GitRepo) -> None:
    repo.write("docker-compose.yml", "services:\n  app:\n    build: .\n"
                                     "    image: myorg/app:latest\n")
    repo.commit("feat: compose")
    finding = check(repo)["artifacts.images"]
    assert finding.status is Status.WARN
    assert finding.message.startswith(
        "app: `image: myorg/app:latest` has no ${TMINUS_VERSION}, so the release tag v0.2.0 "
        "cannot be applied (every build retags myorg/app:latest); no service of "
        "docker-compose.yml builds a release image")
    assert finding.hint == ("write `image: myorg/app:${TMINUS_VERSION}` for app in "
                            "docker-compose.yml")


def test_built_image_without_a_tag_warns_with_the_same_fix(repo: GitRepo) -> None:
    repo.write("docker-compose.yml", "services:\n  app:\n    build: .\n    image: myorg/app\n")
    repo.commit("feat: compose")
    finding = check(repo)["artifacts.images"]
    assert finding.status is Status.WARN
    assert finding.message.startswith("app: `image: myorg/app` has no ${TMINUS_VERSION}")
    assert finding.hint == ("write `image: myorg/app:${TMINUS_VERSION}` for app in "
                            "docker-compose.yml")


def test_infrastructure_image_under_a_fixed_tag_is_not_a_release_image(repo: GitRepo) -> None:
    repo.write("docker-compose.yml", "services:\n  db:\n    build: db\n    image: shop/db:15\n")
    repo.commit("feat: compose")
    finding = check(repo)["artifacts.images"]
    assert finding.status is Status.SKIP
    assert finding.message.startswith("no service of docker-compose.yml builds a release image")


def test_service_built_without_image_is_looked_up_under_the_compose_name(
        repo: GitRepo, docker_client: object) -> None:
    repo.write("docker-compose.yml", "services:\n  app:\n    build: .\n")
    repo.commit("feat: compose")
    finding = check(repo)["artifacts.images"]
    assert finding.status is Status.FAIL
    assert finding.message in {"app: repo-production-app:v0.2.0 is not in the engine",
                               "app: repo-production_app:v0.2.0 is not in the engine"}


def test_a_service_with_no_image_to_look_up_never_loads_the_docker_sdk(git_repo: GitRepo) -> None:
    """Like microblog (no compose file, no manifest): the SDK with requests and urllib3 cost a
    few tenths of a second of every predeploy. Run in a fresh interpreter, whose modules tell."""
    import subprocess
    import sys

    git_repo.write("app.py", "print('hi')\n")
    git_repo.commit("a service without images")
    script = ("import sys\nfrom pathlib import Path\nfrom ops.checks import CheckContext\n"
              "from ops.checks.artifacts import run\nfrom ops.config import Settings\n"
              "from ops.versioning import parse_version\n"
              "ctx = CheckContext(root=Path(sys.argv[1]), settings=Settings(), "
              "version=parse_version('v0.2.0'))\n"
              "statuses = {f.id: f.status.value for f in run(ctx)}\n"
              "print(statuses['artifacts.images'], 'docker' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script, str(git_repo.path)], capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.split() == ["skip", "False"]
