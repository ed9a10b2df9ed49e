"""The command line: ``python -m trails.refinement.service [--config ...] [--host ...] ...``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

from trails.errors import TrailsError
from trails.refinement.service.api import create_app
from trails.refinement.service.settings import EXECUTORS, ServiceSettings

__all__ = ["main"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trails.refinement.service",
                                     description="trails refinement service (successive halving)")
    parser.add_argument("--config", help="config.ini to read (default: $TRAILS_CONFIG or the repository's)")
    parser.add_argument("--host", help="address to bind (default [service] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default [service] port, 8093)")
    parser.add_argument("--dsn", help="libpq connection string (default [service] dsn; empty: PG* variables)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available; with executor ray, "
                        "cpu keeps the Ray workers off GPUs)")
    parser.add_argument("--stream-train", action=argparse.BooleanOptionalAction, default=None,
                        help="start training on the first chunk of the train split (default [service] stream_train)")
    parser.add_argument("--executor", choices=EXECUTORS, help="where candidates train (default [service] executor)")
    parser.add_argument("--ray-address", help="Ray cluster to join: auto or host:port (default [service] "
                        "ray_address; empty: a private local instance)")
    parser.add_argument("--ray-workers", type=int, help="Ray actors training candidates (default [service] "
                        "ray_workers; 0: one per GPU, else one per ray_cpus_per_worker CPUs)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if args.config:
        os.environ["TRAILS_CONFIG"] = os.path.abspath(args.config)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServiceSettings.from_config()
    overrides = {name: value for name, value in
                 (("host", args.host), ("port", args.port), ("dsn", args.dsn), ("executor", args.executor),
                  ("ray_address", args.ray_address), ("ray_workers", args.ray_workers),
                  ("stream_train", args.stream_train)) if value is not None}
    settings = ServiceSettings(**{**settings.__dict__, **overrides})
    try:
        settings.validate()
    except TrailsError as error:
        parser.exit(2, f"trails refinement service: {error.message}\nHINT: {error.hint}\n")
    uvicorn.run(create_app(settings, args.device), host=settings.host, port=settings.port,
                log_level=args.log_level.lower())
