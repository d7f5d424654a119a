"""The `jobgate` command: `serve` runs the gateway, `agent` a remote provider's agent, `schema`
prints the GraphQL SDL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import uvicorn

from jobgate.agent.client import GatewayRefused
from jobgate.agent.runner import Agent
from jobgate.agent.settings import load_agent_settings
from jobgate.app import create_app
from jobgate.demo import DEMO_USER, demo_settings
from jobgate.errors import ConfigError
from jobgate.schema.build import build_schema
from jobgate.server.config import tune_garbage_collector, uvicorn_config
from jobgate.settings import Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jobgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="a TOML config file (default: demo setup)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--log-level", default="info", help="uvicorn's log level")
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
    agent.add_argument("--log-level", default="info")
    commands.add_parser("schema", help="print the GraphQL schema (SDL)")
    args = parser.parse_args(argv)

    if args.command == "schema":
        sys.stdout.write(build_schema().as_str() + "\n")
        return 0
    if args.command == "agent":
        return _agent(args)

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
        server = settings.server.model_copy(
            update={
                key: value
                for key, value in (("host", args.host), ("port", args.port))
                if value is not None
            }
        )
        settings = settings.model_copy(update={"server": server})
        if args.config is None and not settings.users and not settings.providers:
            settings = _demo(settings)
        app = create_app(settings)
    except ConfigError as error:
        print(f"jobgate: {error.message}", file=sys.stderr)
        return 2
    tune_garbage_collector()
    uvicorn.Server(uvicorn_config(app, server, log_level=args.log_level)).run()
    return 0


def _agent(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not args.token:
        print(
            "jobgate agent: give the provider's token with --token or JOBGATE_AGENT_TOKEN",
            file=sys.stderr,
        )
        return 2
    if not args.gateway.startswith(("http://", "https://")):
        print(
            "jobgate agent: --gateway is the gateway's http(s)://.../graphql URL", file=sys.stderr
        )
        return 2
    try:
        settings = load_agent_settings(args.config)
        return asyncio.run(_run_agent(Agent(settings, args.gateway, args.token)))
    except ConfigError as error:
        print(f"jobgate agent: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _run_agent(agent: Agent) -> int:
    try:
        await agent.run()
    except GatewayRefused as error:
        print(f"jobgate agent: {error.message}", file=sys.stderr)
        return 1
    return 0


def _demo(overrides: Settings) -> Settings:
    """The embedded setup, keeping storage, bus and server settings from the environment."""
    demo = demo_settings()
    settings = demo.model_copy(
        update={"storage": overrides.storage, "bus": overrides.bus, "server": overrides.server}
    )
    token = settings.users[0].token.get_secret_value()
    host, port = overrides.server.host, overrides.server.port
    print(
        "jobgate: no config file, running the demo setup "
        f"(SQLite in {settings.server.data_dir}/, local provider, demo applications)\n"
        f"  GraphiQL:  http://{host}:{port}/graphql\n"
        f"  user:      {DEMO_USER}\n"
        "  headers:   paste into GraphiQL's Headers tab:\n"
        f'             {{"Authorization": "Bearer {token}"}}',
        flush=True,
    )
    return settings


if __name__ == "__main__":
    raise SystemExit(main())
