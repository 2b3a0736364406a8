"""What every Invoke task shares: settings from the context, and the error boundary.

Tasks stay thin: read arguments and config, call one function of ``ops``, and let
``@boundary`` turn an ``OpsError`` into one line on stderr and DESIGN.md's exit code.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from invoke.context import Context
from invoke.exceptions import Exit

from ops.config import Settings, load_settings
from ops.errors import ExitCode, OpsError, exit_code_for

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("ops")


def debug_enabled() -> bool:
    """``invoke --debug`` (invoke's own flag) or TMINUS_DEBUG=1 show tracebacks."""
    return bool(os.environ.get("TMINUS_DEBUG")) or logging.getLogger("invoke").isEnabledFor(
        logging.DEBUG)


def boundary(body: Callable[P, R]) -> Callable[P, R]:
    """The one place where exceptions become exit codes (DESIGN.md, "Exit codes")."""

    @functools.wraps(body)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
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
            raise Exit(f"internal error: {type(exc).__name__}: {exc} "
                       "(run `invoke --debug …` for the traceback)",
                       code=exit_code_for(exc)) from None

    return wrapper


def settings_from(c: Context) -> Settings:
    raw = c.config.get("ops", None)
    return load_settings(raw)


def project_root(c: Context, settings: Settings) -> Path:
    """The service repository: ``ops.project_root`` relative to the directory invoke runs in."""
    base = Path(getattr(c, "cwd", "") or Path.cwd())
    return (base / settings.project_root).resolve()


def say(message: str) -> None:
    """Progress and verdict lines go to stdout; errors go through ``boundary`` to stderr."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def optional_path(value: Any) -> Path | None:
    return Path(value) if value else None
