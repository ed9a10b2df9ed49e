"""trails' settings: the defaults shipped with the package, then the user's file.

Every setting, its default and its meaning are in ``defaults.ini`` inside the package. The
user's file, ``$TRAILS_CONFIG`` when set, overrides any of them; it may only name sections
and keys that ``defaults.ini`` lists (a typo is an error, not a silently ignored line). In
the database, ``make install`` sets ``TRAILS_CONFIG`` in the cluster's environment to an
installed copy of the repository's ``config.ini``; out of it, the scripts set it to the
repository's file. Without ``$TRAILS_CONFIG`` the defaults alone apply.

Values are read with ``ConfigParser``'s typed getters and the list getters below.
"""

from __future__ import annotations

import configparser
import functools
import os
from importlib import resources
from pathlib import Path

from trails.errors import TrailsError

DEFAULTS_NAME = "defaults.ini"


class Config(configparser.ConfigParser):
    """A ``ConfigParser`` with list getters used across trails.

    Attributes:
        user_path: the user's file that was read over the defaults, or None.
    """

    user_path: Path | None = None

    def get_int_list(self, section: str, key: str) -> list[int]:
        """``"8,16,32"`` → ``[8, 16, 32]``."""
        return [int(part) for part in self.get(section, key).split(",") if part.strip()]

    def get_float_list(self, section: str, key: str) -> list[float]:
        return [float(part) for part in self.get(section, key).split(",") if part.strip()]

    def get_path(self, section: str, key: str) -> Path | None:
        """A path setting: None when empty; a relative path is taken relative to the folder of
        the user's file (the defaults set no relative path)."""
        value = self.get(section, key).strip()
        if not value:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.user_path is not None:
            path = self.user_path.parent / path
        return path.resolve()


def _parser() -> Config:
    return Config(inline_comment_prefixes=(";", "#"), interpolation=None)


def defaults_text() -> str:
    """The text of the packaged ``defaults.ini``."""
    return resources.files("trails").joinpath(DEFAULTS_NAME).read_text(encoding="utf-8")


def config_path() -> Path | None:
    """The user's file: ``$TRAILS_CONFIG``, or None (defaults only)."""
    value = os.environ.get("TRAILS_CONFIG", "").strip()
    return Path(value) if value else None


def read_user_file(path: Path) -> Config:
    """The user's file alone, checked against the defaults.

    Raises:
        TrailsError: when the file cannot be read or names a section or key that
            ``defaults.ini`` does not list.
    """
    defaults = _parser()
    defaults.read_string(defaults_text(), source=DEFAULTS_NAME)
    user = _parser()
    try:
        with open(path, encoding="utf-8") as handle:
            user.read_file(handle, source=str(path))
    except OSError as error:
        raise TrailsError(f"cannot read the trails configuration {path}: {error.strerror}",
                          hint="fix or unset $TRAILS_CONFIG (for the database: run `make install` "
                               "again, which installs config.ini and records its path)") from None
    except configparser.Error as error:
        raise TrailsError(f"the trails configuration {path} is not valid: {error}") from None
    for section in user.sections():
        if not defaults.has_section(section):
            raise TrailsError(f"unknown section [{section}] in {path}",
                              hint="sections: " + ", ".join(defaults.sections()))
        unknown = [key for key in user[section] if not defaults.has_option(section, key)]
        if unknown:
            raise TrailsError(f"unknown setting {unknown[0]!r} in section [{section}] of {path}",
                              hint=f"settings of [{section}]: " + ", ".join(defaults[section]))
    return user


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> Config:
    config = _parser()
    config.read_string(defaults_text(), source=DEFAULTS_NAME)
    if path is not None:
        config.read_dict(read_user_file(Path(path)))
        config.user_path = Path(path).resolve()
    return config


def load_config() -> Config:
    """The settings now in force (defaults, then ``$TRAILS_CONFIG``; cached per path).

    Raises:
        TrailsError: for an unreadable or invalid user file (see :func:`read_user_file`).
    """
    path = config_path()
    return _load(str(path) if path is not None else None)


def data_dir() -> Path:
    """The folder holding the datasets: ``$TRAILS_DATA_DIR``, else ``[data] data_dir``.

    Raises:
        TrailsError: when neither is set.
    """
    env = os.environ.get("TRAILS_DATA_DIR")
    if env:
        return Path(env)
    path = load_config().get_path("data", "data_dir")
    if path is None:
        raise TrailsError("no data folder is configured",
                          hint="set $TRAILS_DATA_DIR, or [data] data_dir in your config.ini")
    return path
