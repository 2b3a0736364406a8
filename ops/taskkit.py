"""What every Invoke task shares: settings from the context, and the error boundary.

Tasks stay thin: read arguments and config, call one function of ``ops``, and let
``@boundary`` turn an ``OpsError`` into one line on stderr and DESIGN.md's exit code.

Two things happen before any task body runs, and both are Invoke's, so they are guarded here:

- Invoke reads ``INVOKE_OPS_*`` variables itself, casting each to the type of the value it
  overrides; ``INVOKE_OPS_BACKUP_KEEP=abc`` (or any variable for a list setting) raises from
  inside Invoke, before any task starts, and the person sees a traceback. ``install_env_guard``
  turns that into exit 2 and one line naming the variable.
- Invoke silently ignores a variable that names no setting, and reads ``false`` as true for a
  boolean one; ``settings_from`` warns about the first and refuses the second.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from invoke.config import Config
from invoke.context import Context
from invoke.exceptions import AmbiguousEnvVar, Exit, ParseError, UncastableEnvVar
from invoke.parser.argument import Argument
from invoke.parser.context import ParserContext
from invoke.program import Program

from ops.config import Settings, defaults, load_settings
from ops.configfile import read_config_file
from ops.errors import ChecksFailed, ConfigError, ExitCode, OpsError, UsageError, exit_code_for
from ops.redact import printable
from ops.report import Report, choose_format, emit
from ops.runtime.git import git_failure, work_tree_top

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("ops")

#: Invoke's own env prefix when a Config does not say (``Config.prefix`` is "invoke").
DEFAULT_ENV_PREFIX = "INVOKE_"
#: The raw values that mean what Invoke reads them as for a boolean setting: Invoke takes every
#: value but "0" and "" as true, so ``false``/``no``/``off`` would silently switch a thing on.
_BOOLEAN_VALUES = frozenset({"", "0", "1", "true", "yes", "on"})
#: An internal error's message longer than this is cut: the boundary prints one line.
_INTERNAL_LIMIT = 300


def debug_enabled() -> bool:
    """``invoke --debug`` (invoke's own flag) or TMINUS_DEBUG=1 show tracebacks."""
    return bool(os.environ.get("TMINUS_DEBUG")) or logging.getLogger("invoke").isEnabledFor(
        logging.DEBUG)


def boundary(body: Callable[P, R]) -> Callable[P, R]:
    """The one place where exceptions become exit codes (DESIGN.md, "Exit codes").

    SIGTERM is made an interrupt for the task's duration, so every task cleans up and exits
    130 on it as on Ctrl-C (a deploy's rollback path, a backup's partial directory).
    """

    @functools.wraps(body)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        install_sigterm_as_interrupt()  # SIGTERM takes Ctrl-C's way out in every task
        try:
            return body(*args, **kwargs)
        except Exit:
            raise
        except KeyboardInterrupt:
            raise Exit("interrupted", code=ExitCode.INTERRUPTED) from None
        except OpsError as exc:
            if debug_enabled():
                traceback.print_exc()
            raise Exit(f"error: {exc.one_line()}", code=exc.exit_code) from None
        except Exception as exc:
            if debug_enabled():
                traceback.print_exc()
            git_failed = _as_git_failure(exc)
            if git_failed is not None:  # a git command no caller wrapped: still one line
                raise Exit(f"error: {git_failed.one_line()}", code=git_failed.exit_code) from None
            raise Exit(f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                       "(run `invoke --debug …` for the traceback)",
                       code=exit_code_for(exc)) from None

    return wrapper


def install_sigterm_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, as Ctrl-C does (DESIGN.md: 130).

    So a task's cleanup runs the same way for both (children stopped, partial output removed,
    an audit line written) and ``boundary`` exits 130. A no-op off the main thread (Python
    allows signal handlers only there); installing twice is harmless.
    """
    import signal
    import threading

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _as_git_failure(exc: Exception) -> OpsError | None:
    """GitPython's GitCommandError as ops' one-line GitFailed (None for anything else)."""
    if type(exc).__module__.split(".")[0] != "git":  # GitPython is imported only where used
        return None
    import git

    return git_failure(exc) if isinstance(exc, git.GitCommandError) else None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _INTERNAL_LIMIT else text[:_INTERNAL_LIMIT - 1] + "…"


# --- settings and the project root ---------------------------------------------------------------


def settings_from(c: Context) -> Settings:
    """The validated ``ops`` settings, after checking the ``INVOKE_OPS_*`` variables Invoke read.

    A variable that names no setting gets a did-you-mean warning on stderr (Invoke ignores it
    without a word); a boolean Invoke misread, or a value that does not validate, is a
    ConfigError (exit 2) naming the variable rather than only the setting.
    """
    config = c.config
    raw = config.get("ops", None)
    prefix = env_prefix(config)
    for line in unknown_env_warnings(raw or {}, prefix, os.environ):
        sys.stderr.write(f"warning: {line}\n")
    sources = env_sources(getattr(config, "_env", None) or {}, prefix)
    check_env_booleans(getattr(config, "_env", None) or {}, prefix, os.environ)
    return load_settings(raw, sources=sources)


def project_root(c: Context, settings: Settings) -> Path:
    """The service repository: ``ops.project_root`` relative to the project's home.

    The home is the folder of the tasks.py (and invoke.yaml) Invoke loaded, so a task run from
    ``service/`` or ``docs/`` judges the same repository as one run from the root; without one
    (a Context made by hand) it is the git top level of the current directory, and only outside
    any repository the current directory itself.
    """
    return (project_home(c) / settings.project_root).resolve()


def project_home(c: Context) -> Path:
    """Where Invoke found the task collection; else the enclosing git work tree; else the cwd."""
    loaded_from = getattr(c.config, "_project_prefix", None)
    if loaded_from:
        return Path(loaded_from)
    here = Path.cwd()
    return work_tree_top(here) or here


# --- INVOKE_OPS_* variables ----------------------------------------------------------------------


def env_prefix(config: Any) -> str:
    """The prefix Invoke reads variables with (``INVOKE_``, or a custom program's own)."""
    prefix = getattr(config, "_env_prefix", None)
    return str(prefix) if prefix else DEFAULT_ENV_PREFIX


def env_var_name(prefix: str, path: tuple[str, ...]) -> str:
    """Invoke's rule: the key path joined with ``_``, upper-cased, after the prefix."""
    return prefix + "_".join(path).upper()


def leaves(data: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(key path, value)`` of every leaf, walking mappings the way Invoke's loader does (an
    empty mapping has no leaves: nothing in it can be set from the environment)."""
    keys = getattr(data, "keys", None)
    if callable(keys) and hasattr(data, "__getitem__"):
        for key in keys():
            yield from leaves(data[key], (*path, str(key)))
    else:
        yield path, data


def ops_env_names(ops: Any, prefix: str) -> dict[str, tuple[str, ...]]:
    """Each variable Invoke maps into the merged ``ops`` settings → the key path it sets."""
    return {env_var_name(prefix, ("ops", *path)): ("ops", *path) for path, _ in leaves(ops)}


def unknown_env_warnings(ops: Any, prefix: str, environ: Mapping[str, str]) -> list[str]:
    """One warning per ``{prefix}OPS_*`` variable that names no setting, with the closest name.

    Names are compared without the shared prefix (it would make every pair look alike), and
    ``__`` is read as ``_`` (other tools nest with a double underscore; Invoke does not).
    """
    known = ops_env_names(ops, prefix)
    head = env_var_name(prefix, ("ops",)) + "_"
    tails = {name.removeprefix(head): name for name in known}
    warnings = []
    for name in sorted(environ):
        if not name.startswith(head) or name in known:
            continue
        tail = name.removeprefix(head)
        while "__" in tail:
            tail = tail.replace("__", "_")
        close = difflib.get_close_matches(tail, list(tails), n=1, cutoff=0.6)
        advice = (f"did you mean {tails[close[0]]}?" if close else
                  f"`invoke config` lists the settings; {head}<SECTION>_<KEY> sets one")
        warnings.append(f"{name} is not a tminus setting and is ignored ({advice})")
    return warnings


def env_sources(env_data: Any, prefix: str) -> dict[str, str]:
    """Dotted path → variable for every ``ops`` value Invoke took from the environment."""
    return {".".join(path): env_var_name(prefix, path)
            for path, _ in leaves(env_data) if path[:1] == ("ops",)}


def check_env_booleans(env_data: Any, prefix: str, environ: Mapping[str, str]) -> None:
    """Refuse a boolean setting whose variable Invoke read as something it does not say."""
    for path, value in leaves(env_data):
        if path[:1] != ("ops",) or not isinstance(value, bool):
            continue
        name = env_var_name(prefix, path)
        if environ.get(name, "").strip().lower() not in _BOOLEAN_VALUES:
            raise ConfigError(f"{name} ({'.'.join(path)}): not a boolean; Invoke reads every "
                              "value but 0 or an empty one as true",
                              hint=f"set {name}=1 or {name}=0")


def uncastable_env_var(config: Any, environ: Mapping[str, str]) -> str | None:
    """Why Invoke's environment loading failed, naming the variable; None when it is not one.

    Re-does Invoke's mapping over the merged configuration it crawled: a list cannot be set
    from a string, a number must parse as the type of the value it replaces, and two settings
    must not share one variable name. Values are never shown (a variable may hold a secret).
    """
    prefix = env_prefix(config)
    seen: dict[str, tuple[str, ...]] = {}
    for path, old in leaves(getattr(config, "_config", {})):
        name = env_var_name(prefix, path)
        dotted = ".".join(path)
        if name in seen:
            return (f"{name} would set both {'.'.join(seen[name])} and {dotted}; Invoke cannot "
                    "read its environment until one of them is renamed")
        seen[name] = path
        if name not in environ or old is None or isinstance(old, bool | str):
            continue
        if isinstance(old, list | tuple):
            return (f"{name} ({dotted}): a list cannot be set from an environment variable "
                    f"(hint: unset it and set {dotted} in invoke.yaml)")
        try:
            old.__class__(environ[name])
        except (ValueError, TypeError):
            kind = {"int": "an integer", "float": "a number"}.get(type(old).__name__,
                                                                  f"a {type(old).__name__}")
            return f"{name} ({dotted}): not {kind}"
    return None


def install_env_guard() -> None:
    """Wrap Invoke's ``Config.load_shell_env`` so a variable it cannot cast ends the run with
    exit 2 and one line, instead of a traceback from inside Invoke.

    Invoke loads the environment after it has found the tasks and before it calls one, with no
    hook in between that a collection could use; so the guard wraps the method itself. It only
    changes what happens when loading fails and the failing variable can be named; anything else
    is re-raised untouched. Installing twice is harmless.
    """
    original = Config.load_shell_env
    if getattr(original, "_tminus_env_guard", False):
        return

    @functools.wraps(original)
    def load_shell_env(self: Config) -> None:
        try:
            original(self)
        except (ValueError, TypeError, UncastableEnvVar, AmbiguousEnvVar):
            problem = uncastable_env_var(self, os.environ)
            if problem is None:
                raise
            raise Exit(f"error: {problem}", code=ExitCode.USAGE) from None

    load_shell_env._tminus_env_guard = True  # type: ignore[attr-defined]
    Config.load_shell_env = load_shell_env  # type: ignore[method-assign]


def install_config_file_guard() -> None:
    """Have Invoke read ``invoke.yaml`` (``.yml``, ``.json``; the project's and ``-f FILE``)
    through ``ops.configfile``: a file that does not parse, nests or expands without bound, or
    has a shape Invoke cannot merge ends the run with exit 2 and one line naming the file and
    the position, instead of a traceback (or a hang) from inside Invoke.

    Invoke loads these files after it has imported the tasks and before it calls one, with no
    hook in between; so, like ``install_env_guard``, this replaces its loader methods. A missing
    file still raises ``FileNotFoundError``, which Invoke takes as "try the next suffix". The
    system and user files (``/etc/invoke.yaml``, ``~/.invoke.yaml``) are read before any tasks
    module is imported, so this cannot reach them. Installing twice is harmless.
    """
    if getattr(Config._load_yaml, "_tminus_config_guard", False):
        return
    def load(self: Config, path: Any) -> Any:
        # what the file is merged over: Invoke's own defaults, the collection's, tminus's
        shape = {**self._defaults, **self._collection, "ops": defaults()}
        try:
            return read_config_file(path, shape)
        except ConfigError as exc:
            raise Exit(f"error: {exc.one_line()}", code=ExitCode.USAGE) from None

    load._tminus_config_guard = True  # type: ignore[attr-defined]
    Config._load_yaml = Config._load_yml = Config._load_json = load  # type: ignore[method-assign]


#: What an option of each kind takes, in --help and in the error a wrong value gets.
_KIND_WORDS = {int: ("INT", "a whole number"), float: ("NUMBER", "a number")}


def install_argv_guard() -> None:
    """Make the command line keep the exit-code contract in ``invoke`` and ``tminus`` alike.

    Invoke casts an option's value with the parameter's type and lets the ``ValueError`` of
    ``--watch abc`` escape as a traceback; it exits 1 for an unknown option, where usage errors
    exit 2; and its --help shows a float option (``--watch``, ``--lock-wait``) with no value at
    all, as if it were a switch. Like the guards above, this wraps Invoke's own methods, as
    there is no hook a collection could use: a value that does not cast is a ParseError naming
    the option, a ParseError met while reading the tasks' arguments is ``error: …`` and exit 2,
    and a float option reads ``--watch=NUMBER``. Shell completion, which catches its own
    ParseErrors, is untouched. Installing twice is harmless.
    """
    if getattr(Argument.set_value, "_tminus_argv_guard", False):
        return
    set_value = Argument.set_value

    @functools.wraps(set_value)
    def checked_set_value(self: Argument, value: Any, cast: bool = True) -> None:
        try:
            set_value(self, value, cast)
        except (ValueError, TypeError):
            kind = _KIND_WORDS.get(self.kind, ("", f"a {getattr(self.kind, '__name__', '?')}"))
            raise ParseError(f"--{(self.name or '?').replace('_', '-')} takes {kind[1]}, not "
                             f"{str(value)[:40]!r}") from None

    checked_set_value._tminus_argv_guard = True  # type: ignore[attr-defined]
    Argument.set_value = checked_set_value  # type: ignore[method-assign]

    def usage_errors(original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def parse(self: Program, *args: Any) -> None:
            try:
                original(self, *args)
            except ParseError as exc:
                raise Exit(f"error: {exc}", code=ExitCode.USAGE) from None
        return parse

    # (parse_core runs before invoke imports a tasks.py: only `tminus` has its guard there)
    Program.parse_core = usage_errors(Program.parse_core)  # type: ignore[method-assign]
    Program.parse_tasks = usage_errors(Program.parse_tasks)  # type: ignore[method-assign]
    Program.parse_cleanup = usage_errors(Program.parse_cleanup)  # type: ignore[method-assign]

    help_for = ParserContext.help_for

    @functools.wraps(help_for)
    def help_with_numbers(self: ParserContext, flag: str) -> tuple[str, str]:
        spec, text = help_for(self, flag)
        arg = self.flags.get(flag)
        if arg is not None and arg.kind is float:
            spec = ", ".join(f"{name}=NUMBER" if name.startswith("--") else f"{name} NUMBER"
                             for name in spec.split(", "))
        return spec, text

    ParserContext.help_for = help_with_numbers  # type: ignore[method-assign]


install_env_guard()
install_config_file_guard()
install_argv_guard()


# --- output --------------------------------------------------------------------------------------


def say(message: str) -> None:
    """Progress and verdict lines go to stdout; errors go through ``boundary`` to stderr."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def optional_path(value: Any) -> Path | None:
    """A file option (``--output``, ``--notes-file``), or None when not given. A directory is a
    usage error here, before any work: found only at the end, it was an IsADirectoryError from
    the atomic rename, and the run's verdict was lost."""
    if not value:
        return None
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{printable(str(value))} is a directory, not a file",
                         hint=f"name a file in it, e.g. {printable(str(path / 'report.json'))}")
    return path


@dataclasses.dataclass(frozen=True)
class ReportOutput:
    """Where a task's report goes: ``--format`` and ``--output``, checked before any work runs.

    ``finish`` prints the report in the chosen format, writes ``--output`` (also when the report
    failed: CI reads it precisely then) and raises ``ChecksFailed`` (exit 1) when a finding fails.
    """

    fmt: str | None
    path: Path | None

    @classmethod
    def chosen(cls, format: str, output: str) -> ReportOutput:
        path = optional_path(output)
        choose_format(format or None, path)  # a bad --format is a usage error before any work
        return cls(format or None, path)

    def finish(self, report: Report, failure: str, *,
               on_console: Callable[[Report], None] | None = None) -> None:
        """``on_console`` adds to what a person reads (a table after the text report); it is
        not called when the console carries JSON or JUnit that a program parses."""
        emit(report, fmt=self.fmt, output=self.path)
        if on_console is not None and (self.path is not None
                                       or choose_format(self.fmt, None) == "text"):
            on_console(report)
        if not report.ok:
            raise ChecksFailed(failure)
