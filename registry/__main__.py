"""`python3 -m registry serve --listen 127.0.0.1:5000 --root DIR --config FILE`."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .server import parse_listen, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m registry", description="Emulator of the Bitbucket container registry")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the registry")
    s.add_argument("--listen", default="127.0.0.1:5000", help="HOST:PORT (default 127.0.0.1:5000; port 0 picks one)")
    s.add_argument("--root", required=True, type=Path, help="directory for blobs and metadata")
    s.add_argument("--config", required=True, type=Path, help="YAML config: workspaces, packages, members, limits")
    s.add_argument("--ready-file", type=Path, help="write HOST:PORT here once listening")
    s.add_argument("--debug", action="store_true", help="verbose logs (never secrets)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        host, port = parse_listen(args.listen)
        config = load_config(args.config)
    except (ValueError, ConfigError) as exc:
        print(f"registry: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(host, port, args.root, config, args.ready_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
