"""The deploy action: lock → gates → backup → migrations → strategy → watch → audit line.

When a new replica fails its health check, or the post-deploy watch sees more than 5 % errors or
a p95 latency above twice the pre-deploy baseline, the services already switched are rolled back
to the version that was running (its images are still in the engine; rolling, so still no
dropped request) and the deploy ends with exit 1 and "deploy of v0.3.0 failed, rolled back to
v0.2.0", in the JSON result as well, so CI can tell.

Once the lock is held and before anything changes, the deploy records its intent (``intent.py``:
from, to, the step it is at, the latency baseline once measured). A deploy that finds the record
of one that was killed takes it over: the recorded ``from`` is the version that ran before (the
audit line, the automatic rollback and ``rollback previous`` use it), the recorded baseline is
the one the watch compares against, and the switch it interrupted is finished or reversed like
any other. A baseline is never measured on a stack that runs two versions.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from ops.checks import CheckContext, run_predeploy
from ops.config import Settings
from ops.deploy.action import SETTLED, Act, Outcome
from ops.deploy.action import changing_action as action_wrapper
from ops.deploy.audit import AuditEvent, read_events
from ops.deploy.backend import backend_for
from ops.deploy.backup import create_backup
from ops.deploy.intent import (
    Intent,
    IntentUnreadable,
    Tracker,
    choose_baseline,
    intent_path,
    interrupted_in_log,
    is_orphaned,
    read_intent,
)
from ops.deploy.restore import restore_backup
from ops.deploy.stack import Stack, audit_path, open_stack
from ops.deploy.strategies import planner
from ops.deploy.strategies.plan import Rollout, RolloutOptions, current_version
from ops.deploy.swarm_lock import stack_lock
from ops.deploy.watch import WatchBreached, measure_baseline, post_deploy_watch
from ops.errors import ChecksFailed, DeployFailed, LockHeld, UsageError
from ops.release.verify import verify_release
from ops.report import Status
from ops.runtime.docker_engine import image_info, local_tags
from ops.runtime.process import fault_point
from ops.versioning import ReleaseVersion, is_release_tag, parse_version


@dataclass
class DeployOptions:
    env: str
    version: str
    strategy: str = ""  # "" = per service from the configuration
    dry_run: bool = False
    skip_checks: bool = False
    skip_backup: bool = False
    auto_rollback: bool = True
    lock_wait_s: float = 0.0
    watch_s: float | None = None  # None = the environment's watch_s
    #: old replicas drained together per batch; 0 = all at once (the fastest safe)
    batch: int = 0
    backup_id: str | None = None  # a backup taken just before (the deployment pipeline's step)


@dataclass
class DeployResult:
    action: str
    env: str
    to_version: str
    from_version: str | None = None
    result: Outcome = Outcome.SUCCESS  # JSON: its ``recorded`` value
    reason: str | None = None
    rolled_back_to: str | None = None
    backup_id: str | None = None
    watch: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    duration_s: float = 0.0
    skipped_checks: bool = False
    skipped_backup: bool = False
    db: str | None = None
    #: the step at which the interrupted action this one took over had stopped, and that action
    recovered_from: str | None = None
    recovered: dict[str, Any] | None = None
    #: an unfinished action the next deploy or rollback must recover (an interrupted switch)
    left_unfinished: dict[str, Any] | None = None
    #: False until the action held the lock and recorded its intent (then it may change things)
    began: bool = False
    #: what a quick rollback left out, and why that is safe (the audit line says so)
    fast_path: str | None = None
    #: services a one-service rollback left on the new version (the release still runs there)
    kept: list[str] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        """Ended by Ctrl-C or SIGTERM (the task exits 130)."""
        return self.result is Outcome.INTERRUPTED

    @property
    def message(self) -> str:
        was = self.from_version or "nothing"
        if self.result is Outcome.ROLLED_BACK:
            return (f"{self.action} of {self.to_version} failed, rolled back to "
                    f"{self.rolled_back_to}: {self.reason}")
        if self.result in {Outcome.FAILED, Outcome.INTERRUPTED}:
            return f"{self.action} of {self.to_version} failed: {self.reason}"
        if self.result is Outcome.DRY_RUN:
            return f"dry run: {self.action} {was} → {self.to_version} changed nothing"
        db = f"; database: {self.db}" if self.db else ""
        recovered = (f" (recovered an interrupted {self.recovered['action']} stopped at: "
                     f"{self.recovered_from})" if self.recovered and self.recovered_from else "")
        return (f"{self.action} {was} → {self.to_version} succeeded in {self.duration_s:.1f}s"
                + db + recovered)

    def to_dict(self) -> dict[str, Any]:
        return {"tool": "tminus", "action": self.action, "env": self.env,
                "from_version": self.from_version, "to_version": self.to_version,
                "result": self.result.recorded, "message": self.message, "reason": self.reason,
                "rolled_back_to": self.rolled_back_to, "backup_id": self.backup_id,
                "db": self.db, "watch": self.watch, "services": self.services,
                "steps": self.steps, "skipped_checks": self.skipped_checks,
                "skipped_backup": self.skipped_backup, "recovered_from": self.recovered_from,
                "recovered": self.recovered, "duration_s": round(self.duration_s, 2)}


# --- the procedure -------------------------------------------------------------------------------


def deploy(root: Path, settings: Settings, opts: DeployOptions, *,
           out: TextIO | None = None, stack: Stack | None = None,
           on_result: Callable[[DeployResult], None] | None = None) -> DeployResult:
    """Deploy ``opts.version`` to ``opts.env``; raises DeployFailed (exit 1) after a rollback.

    ``on_result`` sees the result whether the deploy succeeds or not (for ``--json``/``--output``,
    which CI reads precisely when it failed).
    """
    started = time.perf_counter()
    release = parse_version(opts.version)  # the one parse: a ReleaseVersion from here on
    version = release.tag
    if opts.strategy:
        planner(opts.strategy)  # UsageError naming the known strategies
    if opts.batch < 0:
        raise UsageError("--batch must be 0 (all at once) or more")
    stack = stack or open_stack(root, settings, opts.env, dry_run=opts.dry_run, out=out)
    services = stack.versioned_services()
    if not services:
        raise UsageError(f"{stack.compose.file.name}: no service image uses ${{TMINUS_VERSION}}",
                         hint="name built images like `image: <name>/app:${TMINUS_VERSION}`")
    require_images(stack, release)
    result = DeployResult("deploy", opts.env, version, skipped_checks=opts.skip_checks,
                          skipped_backup=opts.skip_backup)
    result.from_version = running_version(stack, services)  # settled under the lock
    program = " ".join(stack.compose.program)
    trackers: list[Tracker] = []
    with changing_action(stack, "deploy", version, opts.lock_wait_s, result, trackers,
                         on_result, started=started) as act:
        try:
            tracker = take_over(stack, "deploy", version, result, header=lambda was, to: (
                f"deploy {was or 'nothing'} → {to} to {opts.env} "
                f"(project {stack.project}, {program})"))
            trackers.append(tracker)
            run_deploy(stack, services, release, opts, result, tracker)
        finally:
            act.outcome, act.reason = result.result, result.reason
    return result


def changing_action(stack: Stack, action: str, version: str | None, lock_wait_s: float,
                    result: DeployResult, trackers: list[Tracker],
                    on_result: Callable[[DeployResult], None] | None, *,
                    started: float) -> AbstractContextManager[Act]:
    """The one action wrapper (``ops.deploy.action``) for a deploy, rollback or scale of
    ``stack``: the result settled from its outcome, its steps and the intent it recorded (the
    ``trackers`` the body appends) closing after the audit line; ``on_result`` sees it."""

    unfinished: list[Intent | None] = [None]

    def describe(act: Act) -> AuditEvent | None:
        result.result, result.reason = act.outcome, act.reason
        unfinished[0] = ending(stack, result, act, trackers[0] if trackers else None)
        return audit_event(stack, result)

    def done(act: Act) -> None:
        tracker = trackers[0] if trackers else None
        if act.audit_failed:
            if tracker is not None:
                tracker.close(keep=unfinished[0])
            return
        if tracker is not None:
            tracker.close()
        if on_result is not None:
            on_result(result)

    return action_wrapper(stack.root, stack.env_name, action=action, version=version,
                          describe=describe, audit_log=audit_path(stack), done=done,
                          dry_run=stack.dry_run, lock_wait_s=lock_wait_s, started=started,
                          say=stack.steps.say, progress=stack.steps.waiting,
                          cluster_lock=stack_lock(stack, action, version, lock_wait_s))


def ending(stack: Stack, result: DeployResult, act: Act,
           tracker: Tracker | None = None) -> Intent | None:
    """Whatever happened: time it, keep its steps, and say what it leaves unfinished.

    An action interrupted (Ctrl-C, SIGTERM) in the middle of changing the stack, or one that took
    over an interrupted action and stopped before changing anything, passes the unfinished
    action on in its audit line (``details.interrupted``): its state file is removed like any
    other ending's, and the next deploy or rollback recovers from the line instead.
    """
    result.duration_s = act.duration_s
    result.steps = [r.to_dict() for r in stack.steps.records]
    if tracker is None:
        return None
    unfinished = tracker.left_unfinished(settled=result.result in SETTLED,
                                         interrupted=result.interrupted)
    result.left_unfinished = unfinished.to_dict() if unfinished else None
    return unfinished


def take_over(stack: Stack, action: str, version: str, result: DeployResult, *,
              header: Callable[[str | None, str], str],
              choose_target: Callable[[Intent | None, str | None], str] | None = None
              ) -> Tracker:
    """Under the lock: recover an interrupted action if one is recorded, settle what ran
    before (and, for ``rollback previous``, the target from it), print the header and record
    this action's intent before anything changes."""
    recovered = interrupted_action(stack, holding_lock=True)
    services = stack.versioned_services()
    if recovered is not None:
        stack.steps.say(f"recovering an interrupted {recovered.describe()}")
        result.from_version = recovered.settled_version
        result.recovered_from = recovered.step
        result.recovered = {"action": recovered.action, "from": recovered.from_version,
                            "to": recovered.to_version, "step": recovered.step,
                            "pid": recovered.pid, "host": recovered.host,
                            "started_at": recovered.started_at}
    else:
        result.from_version = running_version(stack, services)
        versions = running_versions(stack, services)
        if len(versions) > 1:
            stack.steps.say(f"  warning: the running replicas carry {' and '.join(versions)} "
                            "and no interrupted deploy is recorded; taking "
                            f"{result.from_version} (most replicas) as the version that ran")
    if choose_target is not None:
        version = result.to_version = choose_target(recovered, result.from_version)
    stack.steps.say(header(result.from_version, version))
    path = None if stack.dry_run else intent_path(stack.root, stack.env_name)
    tracker = Tracker(path, Intent(action, stack.env_name, result.from_version, version),
                      recovered)
    tracker.start()
    result.began = True
    return tracker


def interrupted_action(stack: Stack, *, holding_lock: bool = False) -> Intent | None:
    """The interrupted deploy or rollback of this environment, if one is recorded: a state file
    whose process is gone, else the newest audit line's ``interrupted`` record. A state file of
    a process that still runs is its action in progress: with the lock held (so that lock was
    removed by hand) it refuses this action; before taking the lock it is simply not ours."""
    path = intent_path(stack.root, stack.env_name)
    try:
        found = read_intent(path)
    except IntentUnreadable as exc:
        stack.steps.say(f"  warning: ignoring {path}: it {exc} (no state file tminus wrote)")
        found = None
    if found is not None:
        if is_orphaned(found):
            return found
        if holding_lock and not stack.dry_run:
            raise LockHeld(f"a {found.action} of {found.to_version} by pid {found.pid} is still "
                           f"running on {found.host} (its state file is {path})",
                           hint="its lock was removed by hand: wait for it to finish")
        return None
    return interrupted_in_log(read_events(audit_path(stack), env=stack.env_name),
                              stack.env_name)


def run_deploy(stack: Stack, services: list[str], release: ReleaseVersion,
               opts: DeployOptions, result: DeployResult, tracker: Tracker) -> None:
    """The phases, each announced with the time since the deploy began. What does not depend
    on each other overlaps: the latency baseline is measured while the new replicas start, and
    every versioned service switches at once (see ``switch_services``)."""
    version = release.tag
    backend = backend_for(stack)
    watch_s = stack.env.watch_s if opts.watch_s is None else opts.watch_s
    phase(stack, tracker, "gates")
    run_gates(stack, release, skip_checks=opts.skip_checks)
    phase(stack, tracker, "backup")
    backup_phase(stack, opts, result, tracker)
    backend.ensure_infrastructure(release, services)
    phase(stack, tracker, "baseline")
    baseline = Baseline.choose(stack, services, result, tracker, watch_s=watch_s)
    if stack.env.migrate == "before":
        phase(stack, tracker, "migrate")
        backend.migrate(services[0], release)
    switched: list[Rollout] = []
    try:
        try:
            switched += switch_services(stack, services, release, opts, tracker,
                                        on_started=baseline.settle)
        finally:
            baseline.settle()
        if stack.env.migrate == "after":
            phase(stack, tracker, "migrate")
            backend.migrate(services[0], release)
        phase(stack, tracker, "watch")

        def keep_figures(figures: dict[str, Any]) -> None:  # also when the verdict rolls back
            result.watch = figures

        post_deploy_watch(stack, watch_s, baseline.p95_ms, skipped_why=baseline.skipped_why,
                          on_figures=keep_figures, version=version,
                          replicas={r.service: r.replicas for r in switched})
    except DeployFailed as exc:
        result.reason = exc.message
        previous = result.from_version
        if isinstance(exc, WatchBreached) and previous and not stack.dry_run:
            act_on_breach(stack, exc, switched, previous, opts, result, tracker)
        if not (opts.auto_rollback and previous) or stack.dry_run:
            result.result = Outcome.FAILED
            why = ("--no-auto-rollback" if previous else "nothing ran before to go back to")
            raise DeployFailed(f"deploy of {version} failed ({why}): {exc.message}") from None
        restore_previous(stack, switched, previous, opts, tracker)
        result.result, result.rolled_back_to = Outcome.ROLLED_BACK, previous
        raise DeployFailed(f"deploy of {version} failed, rolled back to {previous}",
                           hint=exc.message) from None
    finally:
        stack.steps.say(stack.steps.phase_summary())
    result.services = services_of(switched)
    if stack.dry_run:
        result.result = Outcome.DRY_RUN


def act_on_breach(stack: Stack, exc: WatchBreached, switched: list[Rollout], previous: str,
                  opts: DeployOptions, result: DeployResult, tracker: Tracker) -> None:
    """The decision tree's branches other than the quick rollback (which the caller does):
    roll back one service only, or stop and hand the database to a person. Returns when the
    quick rollback applies."""
    version, action = result.to_version, exc.decision.action
    if action == "full-rollback":
        why = ("no backup was taken before this deploy" if not result.backup_id else
               "db_rollback is downgrade, which the watch does not perform"
               if stack.env.db_rollback != "restore" else None)
        if why is None and opts.auto_rollback:
            full_rollback(stack, switched, previous, opts, result, tracker)
            raise DeployFailed(f"deploy of {version} failed, rolled back to {previous} with the "
                               f"database ({result.db})", hint=exc.message) from None
        stack.steps.say(f"  full rollback not performed: {why or '--no-auto-rollback'}")
        action = "stop"
    if action == "stop":
        result.result = Outcome.FAILED
        raise DeployFailed(
            f"deploy of {version} stopped: {exc.decision.explain()}",
            hint=(f"the database may need restoring with the code: invoke rollback {previous} "
                  f"--env {stack.env_name} --with-db (not done automatically)")) from None
    if exc.service is None or not opts.auto_rollback:
        return
    service = exc.service
    stack.steps.say(f"automatic rollback of {service} only to {previous}")
    tracker.step(f"rolling back to {previous}: switching {service}")
    switch(stack, service, parse_version(previous), opts,
           replicas=next((r.replicas for r in switched if r.service == service), None))
    kept = [r.service for r in switched if r.service != service]
    result.services = services_of(switched, rolled_back=service)
    result.result, result.rolled_back_to, result.kept = Outcome.ROLLED_BACK, previous, kept
    result.reason = (f"{exc.message}; rolled back {service} only"
                     + (f", {', '.join(kept)} stay on {version}" if kept else ""))
    stay = "stays" if len(kept) == 1 else "stay"
    raise DeployFailed(f"deploy of {version} failed, rolled back {service} to {previous}"
                       + (f" ({', '.join(kept)} {stay} on {version})" if kept else ""),
                       hint=exc.message) from None


def full_rollback(stack: Stack, switched: list[Rollout], previous: str, opts: DeployOptions,
                  result: DeployResult, tracker: Tracker) -> None:
    """The decision tree's "database errors → full rollback", when configured: the backup this
    deploy took first (as ``rollback --with-db`` does), then the code."""
    backup_id = str(result.backup_id)
    tracker.step("database")
    with stack.steps.step(f"database: restore backup {backup_id} (watch: full-rollback)"):
        restore_backup(stack.root, stack.settings, stack.env_name, backup_id, assume_yes=True,
                       out=stack.steps.out)
    result.db = f"restored backup {backup_id}"
    restore_previous(stack, switched, previous, opts, tracker)
    result.result, result.rolled_back_to = Outcome.ROLLED_BACK, previous


def backup_phase(stack: Stack, opts: DeployOptions, result: DeployResult,
                 tracker: Tracker) -> None:
    if opts.backup_id:
        result.backup_id = opts.backup_id
        stack.steps.say(f"  backup {opts.backup_id} taken just before this deploy")
    elif not opts.skip_backup:
        result.backup_id = take_backup(stack, result.from_version)
    else:
        stack.steps.say("  backup skipped (--skip-backup; recorded in the audit log)")
    tracker.backup(result.backup_id)


def phase(stack: Stack, tracker: Tracker, name: str) -> None:
    """Record the step in the intent and announce it with the time since the action began."""
    tracker.step(name)
    stack.steps.phase(name)


def switch(stack: Stack, service: str, version: ReleaseVersion, opts: DeployOptions, *,
           on_started: Callable[[], None] | None = None,
           on_ready: Callable[[], None] | None = None, replicas: int | None = None) -> Rollout:
    """Put ``version`` of ``service`` in place with its strategy, through the backend;
    ``replicas``: the count to run (default: the planner's choice)."""
    strategy = opts.strategy or stack.strategy_of(service)
    options = RolloutOptions(batch=opts.batch, on_started=on_started, on_ready=on_ready,
                             replicas=replicas)
    return backend_for(stack).switch(service, version, strategy=strategy, options=options)


def switch_services(stack: Stack, services: list[str], version: ReleaseVersion,
                    opts: DeployOptions, tracker: Tracker | None, *,
                    on_started: Callable[[], None] | None = None,
                    label: str = "switching",
                    counts: dict[str, int] | None = None) -> list[Rollout]:
    """Switch every service in ``services`` to ``version``, all at once (``counts``: replicas
    per service, where the planner must not choose).

    They share no step: the release's migrations run before (or after) all of them, never
    between two, and each service's strategy keeps its own guarantee (rolling: the old replicas
    serve until the new are healthy and routed; recreate: one version at a time). So the first
    service (the routed one, whose switch the intent names) runs here, and the others start
    beside it in threads as soon as its new replicas are healthy — while its old ones drain,
    the longest wait of a switch. A release that fails its health check has then changed
    nothing else (fail fast stays fast). The result waits for all of them; the first failure is
    raised once they have all ended (an automatic rollback then finds every service settled).
    Under ``--dry-run`` they run one after another, so the printed commands keep their order.
    """
    first, *others = services
    counts = counts or {}
    if tracker is not None:
        tracker.step(f"{label} {first}")
    stack.steps.phase(f"{label} {', '.join(services)}")
    if stack.dry_run or not others:
        done = [switch(stack, first, version, opts, on_started=on_started,
                       replicas=counts.get(first))]
        for service in others:
            if tracker is not None:
                tracker.step(f"{label} {service}")
            done.append(switch(stack, service, version, opts, replicas=counts.get(service)))
        fault_point("deploy:switched")
        return done
    beside: list[Beside] = []

    def start_others() -> None:
        stack.steps.say(f"  {first} is healthy: switching {', '.join(others)} beside its drain")
        beside.extend(Beside(partial(switch, stack, s, version, opts, replicas=counts.get(s)))
                      for s in others)

    failure: DeployFailed | None = None
    done = []
    try:
        done.append(switch(stack, first, version, opts, on_started=on_started,
                           on_ready=start_others, replicas=counts.get(first)))
    except DeployFailed as exc:
        failure = exc
    for job in beside:
        try:
            done.append(job.result())
        except DeployFailed as exc:
            failure = failure or exc
    if failure is not None:  # the automatic rollback looks at what runs, not at ``done``
        raise failure
    fault_point("deploy:switched")
    return done


class Beside:
    """A switch run in a thread beside the main one; ``result()`` waits and re-raises.

    A daemon thread: an interrupted deploy (Ctrl-C, SIGTERM) ends without waiting for it (its
    compose child got the same signal), and the next deploy recovers what it left.
    """

    def __init__(self, work: Callable[[], Rollout]) -> None:
        self._work = work
        self._value: Rollout | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # handed to the waiting thread, which decides
            self._error = exc

    def result(self) -> Rollout:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._value is None:  # pragma: no cover - _run sets one of the two
            raise RuntimeError("the switch beside ended without a result")
        return self._value


def services_of(rollouts: list[Rollout], *, rolled_back: str | None = None
                ) -> dict[str, dict[str, Any]]:
    """The result's ``services``: what each switch did (and, after a one-service rollback,
    which one went back)."""
    return {r.service: {"replicas": r.replicas, "started": r.started, "removed": r.removed,
                        "from": r.previous,
                        **({"rolled_back": r.service == rolled_back} if rolled_back else {})}
            for r in rollouts}


def restore_previous(stack: Stack, switched: list[Rollout], previous: str,
                     opts: DeployOptions, tracker: Tracker | None = None) -> None:
    """Put back the version that ran: the rolled service's old replicas were never removed
    before the new ones were healthy, so only services already switched need redeploying
    (and any that still run another version: the half a recovered switch left behind)."""
    stack.steps.say(f"automatic rollback to {previous}")
    touched = {r.service for r in switched}
    backend = backend_for(stack)
    back = [s for s in stack.versioned_services()
            if s in touched or any(r.version != previous for r in backend.replicas(s))]
    if back:
        # as many as the deploy ran: a replica of the release lost in the watch is not one
        # fewer of the version that comes back
        switch_services(stack, back, parse_version(previous), opts, tracker,
                        label=f"rolling back to {previous}: switching",
                        counts={r.service: r.replicas for r in switched if r.replicas})


# --- the steps -----------------------------------------------------------------------------------


def running_version(stack: Stack, services: list[str]) -> str | None:
    """What runs now, as the backend reports it (on a swarm: the tasks on every node, not
    only the containers of the manager tminus talks to); the first versioned service decides."""
    backend = backend_for(stack)
    for service in services:
        version = current_version(backend.replicas(service))
        if version:
            return version
    return None


def running_versions(stack: Stack, services: list[str]) -> list[str]:
    """Every version the running replicas of the versioned services carry (two: mid-switch)."""
    backend = backend_for(stack)
    return sorted({r.version for s in services for r in backend.replicas(s) if r.version})


def require_images(stack: Stack, version: ReleaseVersion) -> None:
    """A deploy never builds: every versioned image must already be in the engine.

    On a swarm the nodes pull from the registry by digest: the swarm backend finds each digest
    (the manifest's, else the registry's) and fails there when the registry lacks it.
    """
    if stack.client is None or stack.env.backend == "swarm":
        return
    versioned = set(stack.versioned_services())
    missing = [i.reference for i in stack.images(version.tag)
               if i.service in versioned and image_info(stack.client, i.reference) is None]
    if missing:
        usable = usable_versions(stack)
        raise UsageError(f"image(s) {', '.join(missing)} not in the local engine",
                         hint=("build them first (invoke build / docker compose build); usable: "
                               + (", ".join(usable) or "none")))


def usable_versions(stack: Stack) -> list[str]:
    """Release versions whose every built image is present locally, oldest first."""
    if stack.client is None:
        return []
    versioned = set(stack.versioned_services())
    sets = []
    for image in (i for i in stack.images("{version}") if i.service in versioned):
        repository = image.reference.rsplit(":", 1)[0]
        sets.append({t for t in local_tags(stack.client, repository) if is_release_tag(t)})
    common = set.intersection(*sets) if sets else set()
    return sorted(common, key=parse_version)


def run_gates(stack: Stack, release: ReleaseVersion, *, skip_checks: bool) -> None:
    if skip_checks:
        stack.steps.say("  checks skipped (--skip-checks; recorded in the audit log)")
        return
    version = release.tag
    with stack.steps.step(f"predeploy checks for {version} (strict)") as rec:
        ctx = CheckContext(root=stack.root, settings=stack.settings, version=release,
                           env=stack.env_name)
        report = run_predeploy(ctx, strict=True)
        bad = [f.id for f in report.findings() if f.status in {Status.FAIL, Status.WARN}]
        rec.detail = f"{report.summary()}"
        if not report.ok:
            raise ChecksFailed(f"predeploy checks failed for {version}: {', '.join(bad[:6])}",
                               hint=f"run `invoke predeploy --version {version} --strict`")
    # The gate re-reads every checkpoint: whoever can swap a file can also edit the hash cache.
    with stack.steps.step(f"tamper gate: checkpoints and images match the {version} manifest"):
        findings = verify_release(stack.root, stack.settings, release, use_cache=False,
                                  engine=stack.client, env=stack.env_name)
        failed = [f for f in findings if f.status is Status.FAIL]
        if failed:
            raise ChecksFailed(f"release {version} does not match its manifest: "
                               + "; ".join(f.message for f in failed[:3]),
                               hint=f"run `invoke verify-release {version}`")


def take_backup(stack: Stack, running: str | None) -> str | None:
    with stack.steps.step("backup before deploy") as rec:
        backup = create_backup(stack.root, stack.settings, stack.env_name,
                                          label="pre-deploy", version=running,
                                          dry_run=stack.dry_run, out=stack.steps.out)
        rec.detail = backup.id
        return str(backup.id)


class Baseline:
    """The p95 the watch compares against, and why there is none when the p95 rule is off.

    The interrupted run's recorded one, else measured — never on a stack that serves two
    versions. The measurement overlaps the start of the new replicas: it begins with the switch
    and is settled (waited for, and recorded in the intent) as soon as compose has started them,
    before anything waits for their health — a replica the proxy does not yet route to serves
    none of its requests. With no watch (``--watch 0``) there is nothing to compare, so nothing
    is measured.
    """

    def __init__(self, stack: Stack, tracker: Tracker, *, p95_ms: float | None = None,
                 skipped_why: str | None = None, measure: bool = False) -> None:
        self.stack, self.tracker = stack, tracker
        self.p95_ms, self.skipped_why = p95_ms, skipped_why
        self._job: threading.Thread | None = None
        self._settled = not measure
        if measure and (stack.dry_run or stack.env.prometheus_url is None):
            # Probes through the entry point measure the stack as it serves: not while new
            # replicas boot on the same CPUs (which inflated the baseline by half on 2 cores).
            # Prometheus reads the old version's own series, so it can overlap the switch.
            self.p95_ms = measure_baseline(stack)
            self._settled = True
            tracker.baseline(self.p95_ms)
        elif measure:
            self._job = threading.Thread(target=self._measure, daemon=True)
            self._job.start()
        else:
            tracker.baseline(p95_ms)

    def _measure(self) -> None:
        try:
            self.p95_ms = measure_baseline(self.stack)
        except Exception:  # a probe that fails leaves no baseline: the p95 rule is then off
            self.p95_ms = None

    def settle(self) -> None:
        """Wait for the measurement and record it (once; from the deploy's own thread)."""
        if self._settled:
            return
        self._settled = True
        if self._job is not None:
            self._job.join()
        self.tracker.baseline(self.p95_ms)

    @classmethod
    def choose(cls, stack: Stack, services: list[str], result: DeployResult,
               tracker: Tracker, *, watch_s: float) -> Baseline:
        recorded = tracker.recovered.baseline_p95_ms if tracker.recovered else None
        choice = choose_baseline(running_versions(stack, services), recorded,
                                 has_previous=bool(result.from_version))
        if choice.source == "recorded":
            stack.steps.say(f"  latency baseline: p95 {choice.p95_ms:.0f} ms, recorded by the "
                            "interrupted run before its switch")
            return cls(stack, tracker, p95_ms=choice.p95_ms)
        if choice.source == "skip":
            stack.steps.say(f"  latency baseline skipped: {choice.reason}")
            return cls(stack, tracker, skipped_why=choice.reason)
        if choice.source == "measure" and watch_s <= 0:
            stack.steps.say("  latency baseline skipped: no watch to compare it with (--watch 0)")
            return cls(stack, tracker)
        return cls(stack, tracker, measure=choice.source == "measure")




def audit_event(stack: Stack, result: DeployResult) -> AuditEvent | None:
    """The audit line of a deploy, rollback or scale; None under --dry-run (nothing changed)."""
    if stack.dry_run:
        return None
    details: dict[str, Any] = {"strategy_steps": len(result.steps), "project": stack.project}
    for key in ("reason", "rolled_back_to", "backup_id", "watch", "db", "recovered_from",
                "recovered", "fast_path", "kept"):
        value = getattr(result, key)
        if value:
            details[key] = value
    if result.left_unfinished:
        details["interrupted"] = result.left_unfinished
    if result.result == Outcome.SUCCESS:
        # what the operator asked for: the next deploy restores it if replicas are lost
        counts = {service: change.get("replicas", change.get("to"))  # deploy | scale
                  for service, change in result.services.items()}
        details["replicas"] = {s: n for s, n in counts.items() if isinstance(n, int)}
    if result.action in {"deploy", "rollback"} and not result.began:
        details["began"] = False  # refused before it held the lock: it changed nothing
    return AuditEvent(
        action=result.action, env=result.env, result=result.result,
        from_version=result.from_version, to_version=result.to_version,
        duration_s=result.duration_s, skipped_checks=result.skipped_checks,
        skipped_backup=result.skipped_backup, details=details)


def print_result(result: DeployResult, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(result.message + "\n")
