"""Docker Swarm: pure argv builders, the stack file derived from the compose file, and readers.

Swarm already knows how to roll, roll back and reschedule; tminus asks it to instead of
re-implementing any of it. The builders return argv (what ``--dry-run`` prints, and what the
Runner executes against ``DOCKER_HOST``, a manager); the readers use the docker SDK's services,
tasks and nodes, since the CLI's table output is not an interface.

``docker stack deploy`` is given a file derived from the user's compose file, never the file
itself edited: images by content digest (every node runs the same bytes), ``dnsrr`` endpoint
mode for the routed app (the entry point resolves its tasks through Docker's DNS, as on compose;
VIP mode and the ingress mesh do not carry traffic on every network), the entry point published
in host mode, stateful services pinned to the node that holds their volume, and Swarm's update
and rollback policy from configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ops.runtime.process import Argv

#: the stack file format ``docker stack deploy`` accepts (the CLI refuses one without version)
STACK_FILE_VERSION = "3.8"
#: keys ``docker stack deploy`` ignores with a warning, or that mean nothing on a swarm
COMPOSE_ONLY = frozenset({"build", "restart", "depends_on", "container_name", "network_mode",
                          "pull_policy", "profiles"})
VERSION_LABEL = "tminus.version"
ROLE_LABEL = "tminus.role"
ENTRYPOINT_ROLE = "entrypoint"
STACK_LABEL = "com.docker.stack.namespace"
#: How often a one-off task is tried before it counts as failed.
ONE_OFF_ATTEMPTS = 10


@dataclass(frozen=True)
class UpdatePolicy:
    """Swarm's ``update_config``: the rolling deploy, with Swarm's own automatic rollback."""

    parallelism: int = 1
    delay_s: float = 2.0
    monitor_s: float = 5.0
    order: str = "start-first"
    failure_action: str = "rollback"
    max_failure_ratio: float = 0.0

    def flags(self) -> Argv:
        return ["--update-order", self.order, "--update-parallelism", str(self.parallelism),
                "--update-delay", _seconds(self.delay_s),
                "--update-failure-action", self.failure_action,
                "--update-monitor", _seconds(self.monitor_s),
                "--update-max-failure-ratio", f"{self.max_failure_ratio:g}",
                "--rollback-order", self.order, "--rollback-parallelism",
                str(self.parallelism), "--rollback-monitor", _seconds(self.monitor_s)]

    def update_config(self) -> dict[str, Any]:
        return {"parallelism": self.parallelism, "delay": _seconds(self.delay_s),
                "order": self.order, "failure_action": self.failure_action,
                "monitor": _seconds(self.monitor_s),
                "max_failure_ratio": self.max_failure_ratio}

    def rollback_config(self) -> dict[str, Any]:
        return {"parallelism": self.parallelism, "order": self.order,
                "monitor": _seconds(self.monitor_s)}


def _seconds(value: float) -> str:
    return f"{value:g}s"


def service_name(stack: str, service: str) -> str:
    """Swarm names a stack's service ``<stack>_<service>``."""
    return f"{stack}_{service}"


# --- argv ---------------------------------------------------------------------------------------


def stack_deploy(stack: str, stack_file: str) -> Argv:
    """Deploy (or converge) the stack; registry credentials travel to the nodes that pull."""
    return ["docker", "stack", "deploy", "--compose-file", stack_file, "--with-registry-auth",
            "--prune", stack]


def stack_rm(stack: str) -> Argv:
    return ["docker", "stack", "rm", stack]


def service_update(service: str, image: str, version: str, policy: UpdatePolicy, *,
                   replicas: int | None = None) -> Argv:
    """Put ``image`` (``repo@sha256:…``) in place, Swarm rolling it by ``policy``.

    ``--detach``: tminus follows the update itself (UpdateStatus), so an automatic rollback is
    reported as the failure it is, whatever the CLI's exit status. The release label moves with
    the image, so what runs is read from the swarm, not from a file.
    """
    count = ["--replicas", str(replicas)] if replicas is not None else []
    return ["docker", "service", "update", "--detach", "--with-registry-auth",
            "--image", image, "--container-label-add", f"{VERSION_LABEL}={version}",
            *count, *policy.flags(), service]


def service_scale(service: str, replicas: int) -> Argv:
    return ["docker", "service", "scale", "--detach", f"{service}={replicas}"]


def service_ps(service: str) -> Argv:
    return ["docker", "service", "ps", "--no-trunc", "--format", "{{json .}}", service]


def service_logs(service: str, *, since_s: int) -> Argv:
    return ["docker", "service", "logs", "--no-task-ids", "--timestamps", "--since",
            f"{since_s}s", service]


def service_inspect(service: str) -> Argv:
    return ["docker", "service", "inspect", service]


def node_ls() -> Argv:
    return ["docker", "node", "ls", "--format", "{{json .}}"]


def one_off(name: str, image: str, command: list[str], *, network: str,
            env_file: str | None, attempts: int = ONE_OFF_ATTEMPTS) -> Argv:
    """A task that runs to completion (the migrations) on the stack's network, tried again on
    failure a few times (a database task that just started may not accept connections yet)."""
    argv = ["docker", "service", "create", "--detach", "--with-registry-auth", "--name", name,
            "--restart-condition", "on-failure", "--restart-max-attempts", str(attempts - 1),
            "--restart-delay", "2s", "--no-healthcheck", "--network", network]
    if env_file:
        argv += ["--env-file", env_file]
    return [*argv, image, *command]


def service_rm(service: str) -> Argv:
    return ["docker", "service", "rm", service]


#: The label of the relay tasks tminus starts to reach a stack's stores (see ``relay_service``).
RELAY_LABEL = "tminus.relay"
#: What a relay task runs: nothing but waiting (its connections are ``docker exec``s).
RELAY_IDLE = "while :; do sleep 3600; done"
#: Run in the relay task per connection (``sh -c SCRIPT HOST PORT``): stdin/stdout become a TCP
#: connection to HOST:PORT. bash's /dev/tcp where there is bash (Debian-based images: the
#: official postgres and redis ones), else nc (busybox, Alpine-based images). Whichever
#: direction ends first ends the connection: a server that closes first (Postgres after a
#: cancel request, which libpq waits for) must be seen closing by the client.
RELAY_CONNECT = (
    'if command -v bash >/dev/null 2>&1; then '
    'exec bash -c \'exec 3<>"/dev/tcp/$0/$1" || exit 1; cat <&3 & cat <&0 >&3 & wait -n; '
    'kill $(jobs -p) 2>/dev/null; exit 0\' "$0" "$1"; fi; '
    'if command -v nc >/dev/null 2>&1; then exec nc "$0" "$1"; fi; '
    'echo "tminus relay: the image has neither bash nor nc" >&2; exit 127')


def relay_service(name: str, image: str, *, network: str, node_id: str, owner: str) -> Argv:
    """An idle task of ``image`` on the stack's ``network``, pinned to ``node_id`` (the manager
    the operator's engine is): ``docker exec`` into it reaches any task on that network.

    Never restarted (a relay that died is a backup that fails, not one that hangs), stopped in
    a second, and labelled with its owner (``host:pid``) so a leftover one is easy to find.
    """
    return ["docker", "service", "create", "--detach", "--with-registry-auth", "--name", name,
            "--network", network, "--constraint", f"node.id=={node_id}",
            "--restart-condition", "none", "--no-healthcheck", "--stop-grace-period", "1s",
            "--label", f"{RELAY_LABEL}={owner}", "--entrypoint", "sh",
            image, "-c", RELAY_IDLE]


def relay_connect(container: str, host: str, port: int) -> Argv:
    """A TCP connection to ``host:port`` as seen from inside ``container`` (a relay task on this
    engine), on this process's stdin and stdout."""
    return ["docker", "exec", "-i", container, "sh", "-c", RELAY_CONNECT, host, str(port)]


# --- the stack file (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class StackPlan:
    """What the derived stack file needs besides the compose file."""

    images: Mapping[str, str]  # service -> reference to run (by digest where known)
    replicas: Mapping[str, int] = field(default_factory=dict)
    routed: frozenset[str] = frozenset()  # services the entry point resolves through DNS
    pins: Mapping[str, str] = field(default_factory=dict)  # service -> node id
    policy: UpdatePolicy = UpdatePolicy()
    versions: Mapping[str, str] = field(default_factory=dict)  # service -> release label


def stack_file(compose: Mapping[str, Any], plan: StackPlan) -> dict[str, Any]:
    """The stack file for ``docker stack deploy``, derived from a (substituted) compose file.

    Nothing of the user's file is edited: compose-only keys go, each service gets the image the
    plan names, the entry point's ports are published in host mode, routed services resolve
    through DNS round robin, and pinned services are constrained to their node.
    """
    services: dict[str, Any] = {}
    for name, raw in (compose.get("services") or {}).items():
        spec = {k: v for k, v in dict(raw or {}).items()
                if k not in COMPOSE_ONLY and not str(k).startswith("x-")}
        if name in plan.images:
            spec["image"] = plan.images[name]
        labels = _labels(spec.get("labels"))
        if name in plan.versions:
            labels[VERSION_LABEL] = plan.versions[name]
        if labels:
            spec["labels"] = labels
        deploy = dict(spec.get("deploy") or {})
        if name in plan.replicas:
            deploy["replicas"] = plan.replicas[name]
        # every service resolves by DNS round robin: a VIP's connections do not carry on
        # every network (they time out where overlay traffic otherwise flows); the entry point
        # resolves the routed app's tasks itself, as on compose
        deploy["endpoint_mode"] = "dnsrr"
        if name in plan.versions:
            deploy["update_config"] = plan.policy.update_config()
            deploy["rollback_config"] = plan.policy.rollback_config()
        if name in plan.pins:
            placement = dict(deploy.get("placement") or {})
            placement["constraints"] = [*(placement.get("constraints") or []),
                                        f"node.id == {plan.pins[name]}"]
            deploy["placement"] = placement
        if "ports" in spec:
            spec["ports"] = [host_port(p) for p in spec["ports"]]
        if deploy:
            spec["deploy"] = deploy
        services[name] = spec
    derived: dict[str, Any] = {"version": STACK_FILE_VERSION, "services": services}
    for key in ("volumes", "networks", "configs", "secrets"):
        if compose.get(key):
            derived[key] = dict(compose[key])
    return derived


def _labels(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {str(x).partition("=")[0]: str(x).partition("=")[2] for x in raw}
    return {}


def host_port(port: Any) -> dict[str, Any]:
    """A compose port (``"127.0.0.1:8080:8080"``, ``8080``, or long syntax) in host mode.

    The ingress mesh is not used: it does not carry traffic on every network, and host mode
    keeps the client's address. A host IP is dropped: on a swarm the port is the node's.
    """
    if isinstance(port, Mapping):
        return {**port, "mode": "host"}
    text, _, protocol = str(port).partition("/")
    parts = text.split(":")
    target = parts[-1]
    published = parts[-2] if len(parts) >= 2 else target
    return {"target": int(target), "published": int(published),
            "protocol": protocol or "tcp", "mode": "host"}


def entrypoint_services(compose: Mapping[str, Any]) -> list[str]:
    """Services labelled ``tminus.role: entrypoint`` (the proxy in front of the app)."""
    return [name for name, spec in (compose.get("services") or {}).items()
            if _labels((spec or {}).get("labels")).get(ROLE_LABEL) == ENTRYPOINT_ROLE]


# --- readers (docker SDK) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One Swarm task: a replica slot's attempt on a node."""

    id: str
    service: str
    slot: int | None
    node_id: str
    state: str  # new … running | complete | failed | shutdown | rejected | orphaned
    desired: str  # running | shutdown
    error: str
    container_id: str | None
    version: str | None
    image: str

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired == "running"


def tasks(client: Any, service: str) -> list[Task]:
    """Every task of ``service`` Swarm still remembers (its task history included)."""
    from docker.errors import NotFound

    try:
        raw = client.services.get(service).tasks()
    except NotFound:
        return []
    found = []
    for t in raw:
        status = t.get("Status") or {}
        spec = (t.get("Spec") or {}).get("ContainerSpec") or {}
        found.append(Task(
            id=str(t.get("ID", "")), service=service, slot=t.get("Slot"),
            node_id=str(t.get("NodeID", "")), state=str(status.get("State", "")),
            desired=str(t.get("DesiredState", "")), error=str(status.get("Err") or ""),
            container_id=(status.get("ContainerStatus") or {}).get("ContainerID"),
            version=(spec.get("Labels") or {}).get(VERSION_LABEL),
            image=str(spec.get("Image", ""))))
    return found


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    id: str
    version_index: int
    replicas: int | None  # None: global mode
    image: str
    labels: dict[str, str]
    update_state: str | None  # updating | completed | rollback_started | rollback_completed …
    update_message: str
    update_started: str = ""  # when the update this status describes began


def labelled_services(client: Any, label: str) -> dict[str, str]:
    """name -> the value of ``label``, for every service that carries it."""
    found = {}
    for svc in client.services.list(filters={"label": label}):
        labels = (svc.attrs.get("Spec") or {}).get("Labels") or {}
        found[str(svc.name)] = str(labels.get(label, ""))
    return found


def service_info(client: Any, service: str) -> ServiceInfo | None:
    from docker.errors import NotFound

    try:
        svc = client.services.get(service)
    except NotFound:
        return None
    attrs = svc.attrs
    spec = attrs.get("Spec") or {}
    mode = spec.get("Mode") or {}
    status = attrs.get("UpdateStatus") or {}
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    replicated = mode.get("Replicated")
    return ServiceInfo(
        name=service, id=str(attrs.get("ID", "")),
        version_index=int((attrs.get("Version") or {}).get("Index", 0)),
        replicas=int(replicated.get("Replicas", 0)) if replicated is not None else None,
        image=str(container.get("Image", "")), labels=dict(spec.get("Labels") or {}),
        update_state=status.get("State"), update_message=str(status.get("Message") or ""),
        update_started=str(status.get("StartedAt") or ""))


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    manager: bool
    address: str


def nodes(client: Any) -> list[Node]:
    found = []
    for n in client.nodes.list():
        attrs = n.attrs
        status = attrs.get("Status") or {}
        spec = attrs.get("Spec") or {}
        found.append(Node(id=str(attrs.get("ID", "")),
                          hostname=str((attrs.get("Description") or {}).get("Hostname", "")),
                          state=str(status.get("State", "")),
                          availability=str(spec.get("Availability", "")),
                          manager=spec.get("Role") == "manager",
                          address=str(status.get("Addr", ""))))
    return found


def swarm_state(client: Any) -> str:
    """``active`` on a swarm member; ``inactive`` on an engine that is in no swarm."""
    info = client.info()
    return str((info.get("Swarm") or {}).get("LocalNodeState", "inactive"))
