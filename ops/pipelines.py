"""The T-1 process as named chains of steps: pre-deployment, deployment, post-deployment, rollback.

Each pipeline is a handful of explicit calls into ``ops`` (not Invoke ``pre=``/``post=`` hooks,
which skip when a task is called directly). ``Pipeline.step`` shows each step's verdict and
duration; the first failure stops the chain and its error — with its own exit code — reaches the
task layer unchanged, so a pipeline fails exactly as the step that failed would on its own.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ops.atomic import atomic_write_text
from ops.checks import CheckContext, run_predeploy
from ops.config import Settings, resolve_path
from ops.deploy.audit import AuditEvent, read_events, record
from ops.deploy.backup import create_backup
from ops.deploy.deploy import DeployOptions, deploy, running_version
from ops.deploy.outcome import INTERRUPTED_REASON, Outcome, StepRecord, timed_step
from ops.deploy.rollback import rollback
from ops.deploy.smoke import metrics_summary, metrics_table, smoke_test
from ops.deploy.stack import open_stack
from ops.errors import ChecksFailed, OpsError
from ops.release.build import build_images
from ops.release.create import create_release
from ops.release.manifest import manifest_path, read
from ops.release.notes import release_notes
from ops.report import Report, Status, emit
from ops.runtime.git import open_repo
from ops.versioning import parse_version


@dataclass
class Pipeline:
    """Runs steps in order, printing ``[✓] name (1.2s) — summary`` for each."""

    name: str
    out: TextIO = field(default_factory=lambda: sys.stdout)
    outcomes: list[StepRecord] = field(default_factory=list)

    def step(self, name: str, action: Callable[[], str]) -> None:
        """Run one step; ``action`` returns the one-line summary shown beside its verdict.
        Timed and recorded by the same ``timed_step`` as a deploy's steps."""
        self.say(f"\n▶ {self.name} · {name}")
        with timed_step(name, on_end=self._ended) as record:
            record.detail = action()

    def _ended(self, record: StepRecord) -> None:
        self.outcomes.append(record)
        took = f"{record.name} ({record.duration_s:.1f}s)"
        if record.status is Outcome.SUCCESS:
            self.say(f"[✓] {took} — {record.detail or ''}")
            return
        reason = record.detail or (INTERRUPTED_REASON if record.interrupted else "")
        self.say(f"[✗] {took} — {reason}")
        self.say(f"{self.name} stopped at step {len(self.outcomes)}: {record.name}")

    def finish(self) -> None:
        total = sum(o.duration_s for o in self.outcomes)
        self.say(f"\n{self.name}: {len(self.outcomes)} step(s) passed in {total:.1f}s")

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def _require(report: Report, what: str) -> str:
    summary = report.summary()
    text = ", ".join(f"{n} {k}" for k, n in summary.items() if n)
    if not report.ok:
        bad = [f.id for f in report.findings()
               if f.status is Status.FAIL or (report.strict and f.status is Status.WARN)]
        raise ChecksFailed(f"{what} failed: {', '.join(bad[:8])}")
    return text


def _predeploy(root: Path, settings: Settings, version: str, env: str, *, strict: bool,
               out: TextIO) -> str:
    ctx = CheckContext(root=root, settings=settings, version=parse_version(version), env=env)
    report = run_predeploy(ctx, strict=strict)
    emit(report, fmt=None, output=None, stream=out)
    return _require(report, f"predeploy{' --strict' if strict else ''} for {version}")


def _smoke(root: Path, settings: Settings, env: str, out: TextIO) -> str:
    report = smoke_test(open_stack(root, settings, env, out=out))
    emit(report, fmt=None, output=None, stream=out)
    return _require(report, f"smoke test of {env}")


# --- pre-deployment ------------------------------------------------------------------------------


def pre_deployment(root: Path, settings: Settings, version: str, *, env: str = "production",
                   build: bool = True, out: TextIO | None = None) -> Pipeline:
    """Cut the release when its tag is missing, build its images, prove it with --strict."""

    release = parse_version(version)
    pipe = Pipeline("pre-deployment", out or sys.stdout)

    def cut() -> str:
        if release.tag in {t.name for t in open_repo(root).tags}:
            return f"tag {release.tag} exists: create-release not needed"
        result = create_release(root, settings, release.tag)
        return (f"created {release.tag} on {result.branch} "
                f"({result.checkpoint_count} checkpoint file(s))")

    def images() -> str:
        if not build:
            return "skipped (--no-build)"
        result = build_images(root, settings, release.tag, env=env,
                              on_line=lambda line: pipe.say(f"    {line}"))
        return f"{len(result.built)} image(s) built and recorded"

    def summary() -> str:
        manifest = read(manifest_path(root, settings, release))
        pipe.out.write(f"    manifest {release.tag}: cut from {manifest.git.commit[:12]} on "
                       f"{manifest.git.branch}, {len(manifest.artifacts)} artifact(s)\n")
        for service, image in manifest.docker_images.items():
            pipe.out.write(f"    {service}: {image.image} {image.id or '(not built)'}\n")
        pipe.out.write("\n" + release_notes(root, settings, to_ref=release.tag) + "\n")
        return f"{len(manifest.artifacts)} artifact(s), {len(manifest.docker_images)} image(s)"

    pipe.step("create-release (when the tag is missing)", cut)
    pipe.step("build images", images)
    pipe.step("predeploy --strict",
              lambda: _predeploy(root, settings, release.tag, env, strict=True, out=pipe.out))
    pipe.step("manifest and release notes", summary)
    pipe.finish()
    return pipe


# --- deployment ----------------------------------------------------------------------------------


def deployment(root: Path, settings: Settings, env: str, version: str, *, strategy: str = "",
               watch_s: float | None = None, skip_checks: bool = False,
               out: TextIO | None = None) -> Pipeline:
    """Back up, deploy (gates, migrations, rolling switch, watch), then smoke-test."""
    release = parse_version(version)
    pipe = Pipeline("deployment", out or sys.stdout)
    taken: list[str] = []

    def backup() -> str:
        stack = open_stack(root, settings, env, out=pipe.out)
        running = running_version(stack, stack.versioned_services())
        made = create_backup(root, settings, env, label="pre-deploy", version=running,
                             out=pipe.out)
        taken.append(str(made.id))
        return f"backup {made.id} of {env} (running: {running or 'nothing'})"

    def switch() -> str:
        opts = DeployOptions(env=env, version=release.tag, strategy=strategy, watch_s=watch_s,
                             skip_checks=skip_checks, backup_id=taken[0] if taken else None)
        return deploy(root, settings, opts, out=pipe.out).message

    pipe.step("backup", backup)
    pipe.step("deploy", switch)
    pipe.step("smoke-test", lambda: _smoke(root, settings, env, pipe.out))
    pipe.finish()
    return pipe


# --- post-deployment -----------------------------------------------------------------------------


def post_deployment(root: Path, settings: Settings, env: str, version: str, *,
                    out: TextIO | None = None, output: Path | None = None) -> Pipeline:
    """Check the release again where it runs, smoke-test it, and summarise the deploy's metrics:
    the watch's figures from the audit log, and with ``prometheus_url`` the T-1 document's
    summary (request rate, error rate, p95, worker queue, database connections) as a table;
    ``output`` gets both as JSON."""

    release = parse_version(version)
    pipe = Pipeline("post-deployment", out or sys.stdout)
    log = resolve_path(root, settings.audit_log)
    started = time.perf_counter()

    def metrics() -> str:
        deploys = [e for e in read_events(log, env=env)
                   if e.get("action") in {"deploy", "rollback"} and e.get("to_version")
                   == release.tag]
        if not deploys:
            return f"no deploy of {release.tag} to {env} in the audit log"
        last = deploys[-1]
        watch = (last.get("details") or {}).get("watch") or {}
        figures = ", ".join(f"{k} {v}" for k, v in watch.items()
                            if not isinstance(v, dict | list))
        conf = settings.environment(env)
        summary = None
        if conf.prometheus_url is not None:
            window = conf.watch.error_rate.window
            summary = metrics_summary(str(conf.prometheus_url), window)
            pipe.out.write(f"\nMetrics summary (Prometheus, last {window}):\n"
                           + metrics_table(summary) + "\n")
        if output is not None:
            atomic_write_text(output, json.dumps(
                {"tool": "tminus", "env": env, "release": release.tag,
                 "last": {k: last.get(k) for k in ("action", "result", "at", "duration_s")},
                 "watch": watch, "metrics": summary}, indent=2) + "\n")
        return (f"last {last['action']} {last.get('result')} at {last.get('at')} in "
                f"{last.get('duration_s')}s" + (f"; watch: {figures}" if figures else "")
                + ("" if summary else "; no prometheus_url: no metrics summary"))

    def audit(result: Outcome) -> None:
        record(log, AuditEvent(action="post-deployment", env=env, result=result,
                               to_version=release.tag,
                               duration_s=time.perf_counter() - started,
                               details={"steps": [o.name for o in pipe.outcomes]}))

    try:
        pipe.step("predeploy (again, on what was deployed)",
                  lambda: _predeploy(root, settings, release.tag, env, strict=False,
                                     out=pipe.out))
        pipe.step("smoke-test", lambda: _smoke(root, settings, env, pipe.out))
        pipe.step("metrics summary", metrics)
    except OpsError:
        audit(Outcome.FAILED)
        raise
    audit(Outcome.SUCCESS)
    pipe.finish()
    return pipe


# --- rollback ------------------------------------------------------------------------------------


def rollback_pipeline(root: Path, settings: Settings, env: str, version: str | None, *,
                      with_db: bool = False, out: TextIO | None = None) -> Pipeline:
    """Roll back (to ``version`` or the previous one in the audit log), then smoke-test."""

    pipe = Pipeline("rollback", out or sys.stdout)
    pipe.step("rollback", lambda: rollback(root, settings, env, version, with_db=with_db,
                                           out=pipe.out).message)
    pipe.step("smoke-test", lambda: _smoke(root, settings, env, pipe.out))
    pipe.finish()
    return pipe
