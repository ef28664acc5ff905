"""Entry point of the ``cs`` console script: the top-level group, logging, and error → exit code mapping.

Subcommand modules are imported only when their command runs, so ``cs --version`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from typing import Any

import click

from cloudstation import __version__
from cloudstation.errors import CsError, ExitCode

# command name -> "module:attribute" of its click command or group
_COMMANDS: dict[str, tuple[str, str]] = {
    "events": ("cloudstation.cli.events_cmd:events", "Publish, inspect and replay deployment events."),
    "nats": ("cloudstation.cli.nats_cmd:nats", "Set up, check or run the NATS JetStream server."),
    "stream": ("cloudstation.cli.stream_cmd:stream", "Run a command with its output streamed as a deployment log."),
    "init": ("cloudstation.cli.lifecycle_cmd:init", "Detect the project and write a commented cloudstation.hcl."),
    "validate": ("cloudstation.cli.lifecycle_cmd:validate", "Check cloudstation.hcl and every plugin's config."),
    "build": ("cloudstation.cli.lifecycle_cmd:build", "Build each app (and push it when it has a registry)."),
    "deploy": ("cloudstation.cli.lifecycle_cmd:deploy", "Deploy each app's last built artifact."),
    "up": ("cloudstation.cli.lifecycle_cmd:up", "Build, push, deploy and release: the whole lifecycle."),
    "destroy": ("cloudstation.cli.lifecycle_cmd:destroy", "Stop and remove each app's deployment."),
    "status": ("cloudstation.cli.lifecycle_cmd:status", "Show each app's deployment status."),
    "plugins": ("cloudstation.cli.lifecycle_cmd:plugins", "List the plugins and their config attributes."),
    "dispatch": ("cloudstation.cli.dispatch_cmd:dispatch", "Run a Nomad-dispatched deployment task (NOMAD_META_*)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            target = self._lazy[cmd_name][0]
            module, attr = target.split(":")
            cmd = getattr(importlib.import_module(module), attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self._lazy[name][1]) for name in sorted(self._lazy)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("cs: %(levelname)s: %(message)s"))
    root = logging.getLogger("cloudstation")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # nats-py logs some internal races with tracebacks; our own messages say what matters.
    nats_log = logging.getLogger("nats")
    nats_log.handlers[:] = [handler] if verbose > 1 else [logging.NullHandler()]
    nats_log.propagate = False


@click.group(
    cls=LazyGroup,
    lazy=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="cs")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def cli(verbose: int, quiet: bool) -> None:
    """cs: CloudStation deployment orchestrator.

    Runs deployments and reports every step to the platform as NATS JetStream events. An event is
    either stored and acknowledged by JetStream, or kept in the local outbox and retried.

    NATS is configured from the environment: NATS_SERVERS, NATS_CLIENT_PRIVATE_KEY or NATS_CREDS,
    NATS_STREAM_PREFIX, NATS_CA_FILE, NATS_PUBLISH_TIMEOUT, NATS_FLUSH_TIMEOUT, CS_DELIVERY_TIMEOUT;
    the outbox lives in CS_STATE_DIR (default $NOMAD_ALLOC_DIR/cs, else the user state directory).
    """
    _setup_logging(verbose, quiet)


class _Terminated(BaseException):
    """SIGTERM outside a command's own handling: ends ``cs`` like Ctrl-C does, with 128+N."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


def main(argv: list[str] | None = None) -> None:
    """Run ``cs``; a :class:`CsError` becomes one line on stderr and its exit code, never a traceback.

    A signal ends every command with 128+N (SIGINT 130, SIGTERM 143); commands that run a deployment
    handle SIGTERM and SIGINT themselves (stop the child, publish the failure) and exit the same way.
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        rc = cli.main(args=argv, prog_name="cs", standalone_mode=False)
    except CsError as exc:
        click.echo(f"cs: error: {exc}", err=True)
        _exit(int(exc.exit_code))
    except click.exceptions.Abort:
        click.echo("cs: aborted", err=True)
        _exit(130)
    except click.ClickException as exc:
        exc.show()
        _exit(ExitCode.USAGE if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        _exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("cs: interrupted", err=True)
        _exit(128 + signal.SIGINT)
    except _Terminated:
        click.echo("cs: stopped by SIGTERM", err=True)
        _exit(128 + signal.SIGTERM)
    except Exception as exc:
        # A bug, not bad input. The message may quote data we were handed, so it is shown only with -vv.
        if logging.getLogger("cloudstation").isEnabledFor(logging.DEBUG):
            raise
        click.echo(f"cs: internal error: {type(exc).__name__} (a bug in cs; rerun with -vv for details)", err=True)
        _exit(ExitCode.FAILED)
    _exit(rc if isinstance(rc, int) else 0)


def _exit(code: int | None) -> None:
    """Exit with ``code``. The command is over: a signal during the interpreter's teardown (when Python
    puts the default actions back) must not turn the exit code into a death by signal."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
