"""Reading ``config.ini``: every tunable with its default.

The file is ``$TRAILS_CONFIG`` when set, else ``config.ini`` at the repository root
(the parent of ``python/``). Values are read with the typed getters below.
"""

from __future__ import annotations

import configparser
import functools
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class Config(configparser.ConfigParser):
    """A ``ConfigParser`` with list getters used across trails."""

    def get_int_list(self, section: str, key: str) -> list[int]:
        """``"8,16,32"`` → ``[8, 16, 32]``."""
        return [int(part) for part in self.get(section, key).split(",") if part.strip()]

    def get_float_list(self, section: str, key: str) -> list[float]:
        return [float(part) for part in self.get(section, key).split(",") if part.strip()]


def config_path() -> Path:
    """Where the configuration is read from."""
    return Path(os.environ.get("TRAILS_CONFIG") or REPO_ROOT / "config.ini")


@functools.lru_cache(maxsize=4)
def _load(path: str) -> Config:
    parser = Config(inline_comment_prefixes=(";", "#"))
    if not parser.read(path):
        raise FileNotFoundError(f"trails configuration not found at {path}")
    return parser


def load_config() -> Config:
    """The parsed configuration (cached per path)."""
    return _load(str(config_path()))


def data_dir() -> Path:
    """The folder holding the datasets: ``$TRAILS_DATA_DIR``, else ``[data] data_dir``."""
    env = os.environ.get("TRAILS_DATA_DIR")
    if env:
        return Path(env)
    path = Path(load_config().get("data", "data_dir"))
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()
