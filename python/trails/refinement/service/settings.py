"""``[service]`` of ``config.ini``: :class:`ServiceSettings` (see :mod:`trails.refinement.service`).

Only the service's own settings: how the candidates of a job train comes with the job
(:class:`~trails.refinement.jobs.JobSpec`), never from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from trails.config import load_config
from trails.errors import TrailsError
from trails.refinement.executor import Executor, LocalExecutor

__all__ = ["APPLICATION_NAME", "EXECUTORS", "LOOPBACK", "ServiceSettings"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
# the service's connections in pg_stat_activity
APPLICATION_NAME = "trails refinement service"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ServiceSettings:
    """``[service]`` of ``config.ini`` (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 8093
    token: str = ""
    dsn: str = ""
    cache_mb: int = 4096
    max_jobs: int = 100
    max_table_mb: int = 8192
    executor: str = "local"
    ray_address: str = ""
    ray_workers: int = 0
    ray_cpus_per_worker: int = 1
    stream_train: bool = False

    def validate(self) -> None:
        """Refuse to serve the network without a token, or an unknown executor (raises TrailsError)."""
        if self.executor not in EXECUTORS:
            raise TrailsError(f"[service] executor is {self.executor!r}, but must be one of {', '.join(EXECUTORS)}",
                              hint="local trains in the service's process; ray on a Ray cluster (pip install 'trails[ray]')")
        if not self.token and self.host not in LOOPBACK:
            raise TrailsError(f"refusing to bind {self.host} without a token: anyone who reaches it could "
                              "train on any table the service's role can read and download the weights",
                              hint="set [service] token or $TRAILS_SERVICE_TOKEN (and the same token on the "
                                   "database side), or bind 127.0.0.1")

    @classmethod
    def from_config(cls, config=None) -> "ServiceSettings":
        config = config if config is not None else load_config()
        section = "service"
        defaults = cls()
        return cls(
            host=config.get(section, "host", fallback=defaults.host) or defaults.host,
            port=config.getint(section, "port", fallback=defaults.port),
            token=os.environ.get("TRAILS_SERVICE_TOKEN") or config.get(section, "token", fallback=""),
            dsn=config.get(section, "dsn", fallback=""),
            cache_mb=config.getint(section, "cache_mb", fallback=defaults.cache_mb),
            max_jobs=config.getint(section, "max_jobs", fallback=defaults.max_jobs),
            max_table_mb=config.getint(section, "max_table_mb", fallback=defaults.max_table_mb),
            executor=config.get(section, "executor", fallback=defaults.executor).strip().lower() or defaults.executor,
            ray_address=config.get(section, "ray_address", fallback=""),
            ray_workers=config.getint(section, "ray_workers", fallback=defaults.ray_workers),
            ray_cpus_per_worker=config.getint(section, "ray_cpus_per_worker", fallback=defaults.ray_cpus_per_worker),
            stream_train=config.getboolean(section, "stream_train", fallback=defaults.stream_train),
        )

    def create_executor(self, cpu_only: bool = False) -> Executor:
        """The executor jobs train with: :class:`~trails.refinement.executor.LocalExecutor`, or a
        :class:`~trails.refinement.ray_executor.RayExecutor` whose workers use the cluster's GPUs
        unless ``cpu_only`` (``--device cpu``). Raises TrailsError when Ray cannot be used."""
        if self.executor == "ray":
            # imported only when asked for: ray is an optional dependency
            from trails.refinement.ray_executor import RayExecutor

            return RayExecutor(self.ray_address, self.ray_workers, self.ray_cpus_per_worker,
                               use_gpu=False if cpu_only else None)
        return LocalExecutor()
