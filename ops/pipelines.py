"""The T-1 process as named chains of steps: pre-deployment, deployment, post-deployment, rollback.

Each pipeline is a handful of explicit calls into ``ops`` (not Invoke ``pre=``/``post=`` hooks,
which skip when a task is called directly). ``Pipeline.step`` shows each step's verdict and
duration; the first failure stops the chain and its error — with its own exit code — reaches the
task layer unchanged, so a pipeline fails exactly as the step that failed would on its own.

The release arrives parsed (``ReleaseVersion``; the task parses the string once), and each
pipeline opens its environment's ``Stack`` at most once, on first use, and hands it to every step.
``dry_run`` runs every step in its own dry-run mode: nothing is cut, built, backed up or deployed
(the audit log gets only what a step's own dry run records: a backup's ``dry_run`` line, no deploy
or post-deployment line); read-only steps (predeploy, metrics) run as usual, and steps that would
only look at what a dry run did not change (the smoke test after a deploy) say they were skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TextIO

from ops.atomic import atomic_write_text
from ops.checks import CheckContext, run_predeploy
from ops.config import Settings, resolve_path
from ops.deploy.action import Act, changing_action
from ops.deploy.audit import AuditEvent, read_events
from ops.deploy.backup import create_backup
from ops.deploy.deploy import DeployOptions, deploy, running_version
from ops.deploy.outcome import INTERRUPTED_REASON, Outcome, StepRecord, timed_step
from ops.deploy.rollback import rollback
from ops.deploy.smoke import metrics_summary, metrics_table, smoke_test
from ops.deploy.stack import Stack, open_stack
from ops.errors import ChecksFailed
from ops.release.build import build_images
from ops.release.create import create_release
from ops.release.manifest import manifest_path, read
from ops.release.notes import release_notes
from ops.report import Report, Status, emit
from ops.runtime.git import open_repo
from ops.versioning import ReleaseVersion


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

    def finish(self, *, dry_run: bool = False) -> None:
        total = sum(o.duration_s for o in self.outcomes)
        self.say(f"\n{self.name}: {len(self.outcomes)} step(s) passed in {total:.1f}s"
                 + (" (dry run: nothing was changed)" if dry_run else ""))

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


def _predeploy(root: Path, settings: Settings, release: ReleaseVersion, env: str, *,
               strict: bool, out: TextIO) -> str:
    ctx = CheckContext(root=root, settings=settings, version=release, env=env)
    report = run_predeploy(ctx, strict=strict)
    emit(report, fmt=None, output=None, stream=out)
    return _require(report, f"predeploy{' --strict' if strict else ''} for {release}")


def _smoke(stack: Stack, out: TextIO) -> str:
    report = smoke_test(stack)
    emit(report, fmt=None, output=None, stream=out)
    return _require(report, f"smoke test of {stack.env_name}")


def _one_stack(root: Path, settings: Settings, env: str, *, dry_run: bool,
               out: TextIO) -> Callable[[], Stack]:
    """The pipeline's one ``Stack``, opened by the first step that needs it (so a missing compose
    file fails that step, where the pipeline shows and audits it) and shared by the rest."""
    return cache(lambda: open_stack(root, settings, env, dry_run=dry_run, out=out))


DRY_SKIP = "skipped (--dry-run: nothing was changed to look at)"


# --- pre-deployment ------------------------------------------------------------------------------


def pre_deployment(root: Path, settings: Settings, release: ReleaseVersion, *,
                   env: str = "production", build: bool = True, dry_run: bool = False,
                   out: TextIO | None = None) -> Pipeline:
    """Cut the release when its tag is missing, build its images, prove it with --strict."""

    pipe = Pipeline("pre-deployment", out or sys.stdout)
    tagged = release.tag in {t.name for t in open_repo(root).tags}

    def cut() -> str:
        if tagged:
            return f"tag {release.tag} exists: create-release not needed"
        result = create_release(root, settings, release, dry_run=dry_run)
        if dry_run:
            for step in result.steps:
                pipe.say(f"    [dry-run] {step}")
            return f"dry run: would cut {release.tag} on {result.branch}"
        return (f"created {release.tag} on {result.branch} "
                f"({result.checkpoint_count} checkpoint file(s))")

    def images() -> str:
        if not build:
            return "skipped (--no-build)"
        result = build_images(root, settings, release, env=env, dry_run=dry_run,
                              on_line=lambda line: pipe.say(f"    {line}"))
        if dry_run:
            return f"dry run: {len(result.plans)} image(s) would be built"
        return f"{len(result.built)} image(s) built and recorded"

    def checks() -> str:
        if dry_run and not tagged:  # the checks would judge a release the dry run did not cut
            return DRY_SKIP
        return _predeploy(root, settings, release, env, strict=True, out=pipe.out)

    def summary() -> str:
        if dry_run and not tagged:
            return DRY_SKIP
        manifest = read(manifest_path(root, settings, release))
        pipe.out.write(f"    manifest {release.tag}: cut from {manifest.git.commit[:12]} on "
                       f"{manifest.git.branch}, {len(manifest.artifacts)} artifact(s)\n")
        for service, image in manifest.docker_images.items():
            pipe.out.write(f"    {service}: {image.image} {image.id or '(not built)'}\n")
        pipe.out.write("\n" + release_notes(root, settings, to_ref=release.tag) + "\n")
        return f"{len(manifest.artifacts)} artifact(s), {len(manifest.docker_images)} image(s)"

    pipe.step("create-release (when the tag is missing)", cut)
    pipe.step("build images", images)
    pipe.step("predeploy --strict", checks)
    pipe.step("manifest and release notes", summary)
    pipe.finish(dry_run=dry_run)
    return pipe


# --- deployment ----------------------------------------------------------------------------------


def deployment(root: Path, settings: Settings, env: str, release: ReleaseVersion, *,
               strategy: str = "", watch_s: float | None = None, skip_checks: bool = False,
               dry_run: bool = False, out: TextIO | None = None) -> Pipeline:
    """Back up, deploy (gates, migrations, rolling switch, watch), then smoke-test."""
    pipe = Pipeline("deployment", out or sys.stdout)
    stack = _one_stack(root, settings, env, dry_run=dry_run, out=pipe.out)
    taken: list[str] = []

    def backup() -> str:
        running = running_version(stack(), stack().versioned_services())
        made = create_backup(root, settings, env, label="pre-deploy", version=running,
                             dry_run=dry_run, out=pipe.out)
        taken.append(str(made.id))  # the deploy step uses this backup, not one of its own
        if made.dry_run:
            return f"dry run: would back up {env} to {made.path} (running: {running or 'nothing'})"
        return f"backup {made.id} of {env} (running: {running or 'nothing'})"

    def switch() -> str:
        opts = DeployOptions(env=env, version=release.tag, strategy=strategy, watch_s=watch_s,
                             skip_checks=skip_checks, dry_run=dry_run,
                             backup_id=taken[0] if taken else None)
        return deploy(root, settings, opts, out=pipe.out, stack=stack()).message

    pipe.step("backup", backup)
    pipe.step("deploy", switch)
    pipe.step("smoke-test", lambda: DRY_SKIP if dry_run else _smoke(stack(), pipe.out))
    pipe.finish(dry_run=dry_run)
    return pipe


# --- post-deployment -----------------------------------------------------------------------------


def post_deployment(root: Path, settings: Settings, env: str, release: ReleaseVersion, *,
                    dry_run: bool = False, out: TextIO | None = None,
                    output: Path | None = None) -> Pipeline:
    """Check the release again where it runs, smoke-test it, and summarise the deploy's metrics:
    the watch's figures from the audit log, and with ``prometheus_url`` the T-1 document's
    summary (request rate, error rate, p95, worker queue, database connections) as a table;
    ``output`` gets both as JSON.

    Its audit line goes through the one action wrapper (no lock: it changes nothing but the
    log); under ``dry_run`` no line is written.
    """

    pipe = Pipeline("post-deployment", out or sys.stdout)
    stack = _one_stack(root, settings, env, dry_run=dry_run, out=pipe.out)
    log = resolve_path(root, settings.audit_log)

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

    def describe(act: Act) -> AuditEvent | None:
        if act.dry_run:
            pipe.say(f"[dry-run] append the post-deployment line ({act.outcome.recorded}) "
                     f"to {log}")
            return None
        return AuditEvent(action="post-deployment", env=env, result=act.outcome,
                          to_version=release.tag, duration_s=act.duration_s,
                          details={"steps": [o.name for o in pipe.outcomes]})

    with changing_action(root, env, action="post-deployment", version=release.tag,
                         describe=describe, audit_log=log, lock=False, dry_run=dry_run):
        pipe.step("predeploy (again, on what was deployed)",
                  lambda: _predeploy(root, settings, release, env, strict=False, out=pipe.out))
        pipe.step("smoke-test", lambda: _smoke(stack(), pipe.out))
        pipe.step("metrics summary", metrics)
    pipe.finish(dry_run=dry_run)
    return pipe


# --- rollback ------------------------------------------------------------------------------------


def rollback_pipeline(root: Path, settings: Settings, env: str, version: str | None, *,
                      with_db: bool = False, dry_run: bool = False,
                      out: TextIO | None = None) -> Pipeline:
    """Roll back (to ``version`` or the previous one in the audit log), then smoke-test."""

    pipe = Pipeline("rollback", out or sys.stdout)
    stack = _one_stack(root, settings, env, dry_run=dry_run, out=pipe.out)
    pipe.step("rollback", lambda: rollback(root, settings, env, version, with_db=with_db,
                                           dry_run=dry_run, out=pipe.out,
                                           stack=stack()).message)
    pipe.step("smoke-test", lambda: DRY_SKIP if dry_run else _smoke(stack(), pipe.out))
    pipe.finish(dry_run=dry_run)
    return pipe
