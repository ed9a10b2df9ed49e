"""Tell a PostgreSQL cluster where PL/Python finds trails: the venv, never the checkout.

``make install`` runs ``python -m trails.installer --venv V --cluster 15/main --config
config.ini`` (as root) after ``pip install .`` has put the package into the venv. It

1. installs the user's ``config.ini`` as ``V/etc/trails/config.ini`` (relative paths made
   absolute, so the copy does not depend on where the checkout is);
2. records, in the cluster's environment file (``/etc/postgresql/<cluster>/environment``,
   read by the postmaster at start), ``PYTHONPATH`` with the venv's site-packages added to
   whatever entries are there (an entry is removed only when it holds another ``trails``
   package, which would shadow the installed one) and ``TRAILS_CONFIG`` pointing at the copy;
3. restarts the cluster only when that file changed and the cluster is running.

Nothing written names a path inside the checkout, so moving or deleting the checkout leaves
the database working.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from trails.config import read_user_file

_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def site_packages(venv: Path) -> Path:
    """The venv's ``lib/python3.X/site-packages``.

    Raises:
        FileNotFoundError: when the venv has none.
    """
    found = sorted(Path(venv).glob("lib/python3*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no lib/python3*/site-packages in {venv}: run `make setup` first")
    return found[0]


def installed_config_path(venv: Path) -> Path:
    """Where ``make install`` puts the configuration the database reads."""
    return Path(venv) / "etc" / "trails" / "config.ini"


def install_config(source: Path, target: Path) -> bool:
    """Write the user's ``source`` file to ``target`` with relative paths made absolute;
    returns whether ``target`` changed. Raises TrailsError for an invalid ``source``."""
    user = read_user_file(Path(source))
    user.user_path = Path(source).resolve()  # relative paths are relative to the source's folder
    lines = [f"; installed by `make install` from {Path(source).name}; edit that file and "
             "install again", ""]
    for section in user.sections():
        lines.append(f"[{section}]")
        for key, value in user[section].items():
            if (section, key) == ("data", "data_dir") and value.strip():
                value = str(user.get_path(section, key))
            lines.append(f"{key} = {value}")
        lines.append("")
    text = "\n".join(lines)
    if target.exists() and target.read_text() == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(0o644)
    return True


def holds_trails(entry: str) -> bool:
    """Whether a PYTHONPATH entry holds a ``trails`` package (it would shadow the installed one)."""
    return bool(entry) and (Path(entry) / "trails" / "__init__.py").is_file()


def merged_pythonpath(current: str | None, site: Path) -> tuple[str, list[str]]:
    """(new PYTHONPATH, entries removed): ``current``'s entries in order, minus those that hold
    another ``trails`` package, plus ``site`` at the end when absent."""
    entries = [entry for entry in (current or "").split(":") if entry]
    removed = [entry for entry in entries if entry != str(site) and holds_trails(entry)]
    kept = [entry for entry in entries if entry not in removed]
    if str(site) not in kept:
        kept.append(str(site))
    return ":".join(kept), removed


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_environment(path: Path) -> dict[str, str]:
    """The ``KEY = 'value'`` assignments of a Debian cluster environment file."""
    values = {}
    for line in path.read_text().splitlines():
        match = _ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = _unquote(match.group(2))
    return values


def write_environment(path: Path, updates: dict[str, str]) -> bool:
    """Set ``updates`` in the environment file, keeping every other line; returns whether the
    file changed."""
    lines = path.read_text().splitlines()
    pending = dict(updates)
    out = []
    for line in lines:
        match = _ASSIGNMENT.match(line)
        if match and not line.lstrip().startswith("#") and match.group(1) in updates:
            if match.group(1) in pending:
                out.append(f"{match.group(1)} = '{pending.pop(match.group(1))}'")
            continue  # a second assignment of the same key: the one above replaces it
        out.append(line)
    out.extend(f"{key} = '{value}'" for key, value in pending.items())
    text = "\n".join(out) + "\n"
    if text == path.read_text():
        return False
    path.write_text(text)
    return True


@dataclass
class Registration:
    """What :func:`register` did."""

    config_changed: bool
    environment_changed: bool
    removed: list
    restarted: bool


def cluster_online(cluster: str) -> bool:
    version, name = cluster.split("/", 1)
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    return any(line.split()[:2] == [version, name] and "online" in line.split()[3]
               for line in listed.stdout.splitlines() if len(line.split()) > 3)


def register(venv: Path, cluster: str, config: Path, environment_file: Path,
             say=print) -> Registration:
    """Steps 1–3 of the module docstring for one cluster."""
    site = site_packages(venv)
    target = installed_config_path(venv)
    config_changed = install_config(config, target)
    say(f"[install] configuration {config} -> {target}" + ("" if config_changed else " (unchanged)"))
    if not environment_file.exists():
        value, _ = merged_pythonpath(None, site)
        say(f"[install] no {environment_file}: start your PostgreSQL server with "
            f"PYTHONPATH={shlex.quote(value)} TRAILS_CONFIG={shlex.quote(str(target))}")
        return Registration(config_changed, False, [], False)
    current = read_environment(environment_file)
    pythonpath, removed = merged_pythonpath(current.get("PYTHONPATH"), site)
    for entry in removed:
        say(f"[install] removed {entry} from PYTHONPATH: it holds another trails package")
    changed = write_environment(environment_file, {"PYTHONPATH": pythonpath, "TRAILS_CONFIG": str(target)})
    restarted = False
    if not changed:
        say(f"[install] {environment_file} already up to date: no restart")
    else:
        say(f"[install] {environment_file}: PYTHONPATH = '{pythonpath}', TRAILS_CONFIG = '{target}'")
        if cluster_online(cluster):
            say(f"[install] restarting cluster {cluster}: the postmaster reads its environment at start")
            subprocess.run(["pg_ctlcluster", *cluster.split("/", 1), "restart"], check=True)
            restarted = True
    return Registration(config_changed, changed, removed, restarted)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trails.installer", description=__doc__.split("\n")[0])
    parser.add_argument("--venv", required=True, type=Path)
    parser.add_argument("--cluster", default="15/main", help="Debian cluster, VERSION/NAME")
    parser.add_argument("--config", required=True, type=Path, help="the user's config.ini")
    parser.add_argument("--environment-file", type=Path,
                        help="default /etc/postgresql/<cluster>/environment")
    args = parser.parse_args(argv)
    environment_file = args.environment_file or Path("/etc/postgresql") / args.cluster / "environment"
    try:
        register(args.venv.resolve(), args.cluster, args.config, environment_file)
    except (OSError, ValueError, subprocess.CalledProcessError) as error:
        print(f"[install] ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
