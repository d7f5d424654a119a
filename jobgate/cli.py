"""The `jobgate` command: `serve` runs the gateway, `agent` a remote provider's agent, `schema`
prints the GraphQL SDL.

Every bad value stops the start with exit code 2 and one line naming the key. Each command
imports only what it runs: an agent on a cluster's login node never loads the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from jobgate import __version__
from jobgate.errors import ConfigError

if TYPE_CHECKING:  # imported where used: each command loads only its own part
    from jobgate.agent.runner import Agent
    from jobgate.settings import Settings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
EXIT_BAD_CONFIG = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (`jobgate: --port: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 0 and 65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jobgate", description="A GraphQL gateway for compute jobs.")
    parser.add_argument("--version", action="version", version=f"jobgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="a TOML config file (default: demo setup)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default 8000)")
    serve.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="default: info")
    agent = commands.add_parser(
        "agent", help="run a remote provider's agent, which connects out to the gateway"
    )
    agent.add_argument("--gateway", required=True, help="the gateway's /graphql URL")
    agent.add_argument(
        "--token",
        default=os.environ.get("JOBGATE_AGENT_TOKEN"),
        help="the provider's token (default: $JOBGATE_AGENT_TOKEN, which keeps it out of `ps`)",
    )
    agent.add_argument("--config", type=Path, required=True, help="agent.toml")
    agent.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="default: info")
    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    backup = commands.add_parser(
        "backup", help="copy the SQLite store, consistently, while the gateway runs"
    )
    backup.add_argument("destination", type=Path, help="the backup file to make (a new one)")
    backup.add_argument("--config", type=Path, help="the gateway's TOML config file")
    restore = commands.add_parser(
        "restore", help="put a backup in place as the store (the gateway must be stopped)"
    )
    restore.add_argument("source", type=Path, help="a file `jobgate backup` made")
    restore.add_argument("--config", type=Path, help="the gateway's TOML config file")
    restore.add_argument(
        "--replace", action="store_true", help="replace an existing store (kept, renamed)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schema":
        from jobgate.schema.build import build_schema

        sys.stdout.write(build_schema().as_str() + "\n")
        return 0
    if args.command in ("backup", "restore"):
        return _backup_or_restore(args)
    if args.command == "agent":
        return _agent(args)
    return _serve(args)


def _backup_or_restore(args: argparse.Namespace) -> int:
    """`jobgate backup DEST` / `jobgate restore SRC`: prints what the copy holds, as JSON."""
    import json

    from jobgate.backup import BackupError, backup, restore
    from jobgate.server.data_folder import DataFolderLock
    from jobgate.settings import load_settings
    from jobgate.wiring import sqlite_path

    command = f"jobgate {args.command}"
    try:
        settings = load_settings(args.config)
        store = sqlite_path(settings)
        if store is None:
            return _fail(command, "the store is MongoDB: use mongodump and mongorestore (README)")
        if args.command == "backup":
            written = args.destination.absolute()
            summary = backup(store, written)
        else:
            # Held while the store is replaced: no gateway may run on this data folder.
            lock = DataFolderLock(settings.server.data_dir)
            lock.acquire()
            try:
                summary = restore(args.source.absolute(), store, replace=args.replace)
            finally:
                lock.release()
            written = store
    except (ConfigError, BackupError) as error:
        return _fail(command, error.message)
    print(json.dumps({"file": str(written), **summary.as_dict()}))
    return 0


def _configure_logging(
    level: str, *, json_lines: bool = False, audit_file: Path | None = None
) -> None:
    from jobgate.logs_setup import configure_logging

    # uvicorn's TRACE is below DEBUG; everything else is a standard level name.
    number = 5 if level == "trace" else logging.getLevelName(level.upper())
    configure_logging(number, json_lines=json_lines, audit_file=audit_file)


def _fail(command: str, message: str) -> int:
    print(f"{command}: {message}", file=sys.stderr)
    return EXIT_BAD_CONFIG


def _serve(args: argparse.Namespace) -> int:
    from jobgate.app import create_app
    from jobgate.server.config import tune_garbage_collector, uvicorn_config
    from jobgate.server.data_folder import DataFolderLock
    from jobgate.server.draining import DrainingServer
    from jobgate.server.listen import bind

    try:
        settings = _serve_settings(args)
        _configure_logging(
            args.log_level,
            json_lines=settings.logging.format == "json",
            audit_file=settings.logging.audit_file,
        )
        # In this order: nothing is touched before the data folder is ours and the port bound.
        lock = DataFolderLock(settings.server.data_dir)
        lock.acquire()
        sock = bind(settings.server.host, settings.server.port)
        if args.config is None and not settings.users and not settings.providers:
            settings = _demo(settings)
        else:
            _warn_if_unusable(settings)
            _announce(settings, demo_token=None)
        app = create_app(settings)
    except ConfigError as error:
        return _fail("jobgate", error.message)
    tune_garbage_collector()
    config = uvicorn_config(app, settings.server, settings.limits, log_level=args.log_level)
    try:
        DrainingServer(config, app.state.readiness, settings.server.drain_seconds).run(
            sockets=[sock]
        )
    finally:
        lock.release()
    return 0


def _serve_settings(args: argparse.Namespace) -> Settings:
    from jobgate.settings import ServerSettings, load_settings

    settings = load_settings(args.config)
    overrides = {
        key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None
    }
    if overrides:
        # Validated as the file's values are, not merely copied in.
        server = ServerSettings.model_validate({**settings.server.model_dump(), **overrides})
        settings = settings.model_copy(update={"server": server})
    return settings


def _warn_if_unusable(settings: Settings) -> None:
    """A setup that starts but cannot serve anyone is most likely a mistake: say so."""
    if not settings.users:
        print("jobgate: warning: no [[users]]: no one can call the API", file=sys.stderr)
    if not settings.providers:
        print("jobgate: warning: no [[providers]]: submitted jobs cannot run", file=sys.stderr)
    elif not settings.applications:
        print("jobgate: warning: no [[applications]]: there is nothing to run", file=sys.stderr)


def _announce(settings: Settings, *, demo_token: str | None) -> None:
    server = settings.server
    address = f"http://{server.host}:{server.port}/graphql"
    if settings.logging.format == "json" and demo_token is None:
        # Log collectors read standard output too: every line there is JSON.
        logging.getLogger("jobgate").info("serving the API at %s", address)
        return
    lines = [
        f"  GraphiQL:  {address} (the API is there too)"
        if server.graphiql
        else f"  API:       {address}"
    ]
    if demo_token is not None:
        from jobgate.demo import DEMO_USER

        lines += [
            f"  user:      {DEMO_USER}",
            "  headers:   paste into GraphiQL's Headers tab:",
            f'             {{"Authorization": "Bearer {demo_token}"}}',
        ]
    print("\n".join(lines), flush=True)


def _demo(overrides: Settings) -> Settings:
    """The embedded setup, keeping storage, bus and server settings from the environment."""
    from jobgate.demo import demo_settings, demo_token

    token = demo_token(overrides.server.data_dir)
    demo = demo_settings(token)
    settings = demo.model_copy(
        update={"storage": overrides.storage, "bus": overrides.bus, "server": overrides.server}
    )
    print(
        "jobgate: no config file, running the demo setup "
        f"(SQLite in {settings.server.data_dir}/, local provider, demo applications)",
        flush=True,
    )
    _announce(settings, demo_token=token)
    return settings


def _agent(args: argparse.Namespace) -> int:
    from jobgate.agent.runner import Agent
    from jobgate.agent.settings import load_agent_settings

    if not args.token:
        return _fail(
            "jobgate agent", "give the provider's token with --token or JOBGATE_AGENT_TOKEN"
        )
    if not args.gateway.startswith(("http://", "https://")):
        return _fail("jobgate agent", "--gateway is the gateway's http(s)://.../graphql URL")
    try:
        settings = load_agent_settings(args.config)
        _configure_logging(args.log_level, json_lines=settings.logging.format == "json")
        return asyncio.run(_run_agent(Agent(settings, args.gateway, args.token)))
    except ConfigError as error:
        return _fail("jobgate agent", error.message)
    except KeyboardInterrupt:
        return 0


async def _run_agent(agent: Agent) -> int:
    from jobgate.agent.client import GatewayRefused

    try:
        await agent.run()
    except GatewayRefused as error:
        print(f"jobgate agent: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
