"""`python3 -m registry serve --listen 127.0.0.1:5000 --root DIR --config FILE [--tls-cert F --tls-key F]`,
`python3 -m registry pipeline-credentials --root DIR --workspace WS --repository SLUG --ttl SECONDS`."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .names import is_slug
from .pipeline_credentials import mint
from .server import parse_listen, serve, tls_context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m registry", description="Emulator of the Bitbucket container registry"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the registry")
    s.add_argument("--listen", default="127.0.0.1:5000", help="HOST:PORT (default 127.0.0.1:5000; port 0 picks one)")
    s.add_argument("--root", required=True, type=Path, help="directory for blobs and metadata")
    s.add_argument("--config", required=True, type=Path, help="YAML config: workspaces, packages, members, limits")
    s.add_argument("--ready-file", type=Path, help="write HOST:PORT here once listening")
    s.add_argument("--debug", action="store_true", help="verbose logs (never secrets)")
    s.add_argument("--tls-cert", type=Path, help="PEM certificate (chain) to serve HTTPS with")
    s.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    p = sub.add_parser("pipeline-credentials", help="mint credentials the way Pipelines injects them into a step")
    p.add_argument("--root", required=True, type=Path, help="the root of the registry that is to accept them")
    p.add_argument("--workspace", required=True, help="workspace slug")
    p.add_argument("--repository", required=True, help="the pipeline's repository: they reach only its packages")
    p.add_argument("--ttl", required=True, type=int, help="lifetime in seconds")
    p.add_argument("--config", type=Path, help="check that the workspace and repository exist in this config")
    args = parser.parse_args(argv)
    if args.command == "pipeline-credentials":
        return pipeline_credentials(args)

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        host, port = parse_listen(args.listen)
        config = load_config(args.config)
        ssl_context = tls_context(args.tls_cert, args.tls_key)
    except (ValueError, ConfigError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(host, port, args.root, config, args.ready_file, ssl_context))
    return 0


def pipeline_credentials(args: argparse.Namespace) -> int:
    problems = []
    if not is_slug(args.workspace):
        problems.append(f"--workspace {args.workspace!r} is not a workspace slug")
    if not is_slug(args.repository):
        problems.append(f"--repository {args.repository!r} is not a repository slug")
    if args.ttl < 1:
        problems.append(f"--ttl must be at least 1 second, got {args.ttl}")
    if args.config is not None and not problems:
        try:
            workspace = load_config(args.config).workspaces.get(args.workspace)
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            if workspace is None:
                problems.append(f"workspace {args.workspace!r} is not in {args.config}")
            elif args.repository not in workspace.repositories:
                problems.append(
                    f"repository {args.repository!r} is not in workspace {args.workspace!r} of {args.config}"
                )
    if problems:
        print("registry: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        username, token = mint(args.root, args.workspace, args.repository, args.ttl)
    except OSError as exc:
        print(f"registry: cannot store credentials under {args.root}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"BITBUCKET_PACKAGES_USERNAME={username}")
    print(f"BITBUCKET_PACKAGES_TOKEN={token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
