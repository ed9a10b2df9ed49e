"""The package is installed: the database finds trails through the venv alone, the checkout
can move, and the settings come from the packaged defaults plus the user's file."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

import trails
from conftest import REPO
from trails import installer
from trails.config import load_config, read_user_file
from trails.errors import TrailsError

ENVIRONMENT_FILE = Path("/etc/postgresql/15/main/environment")


def _inside_checkout(path: str) -> bool:
    try:
        Path(path).resolve().relative_to(REPO.resolve())
        return True
    except ValueError:
        return False


def test_the_tests_import_the_installed_package():
    assert not _inside_checkout(trails.__file__)
    shadowing = [entry for entry in sys.path if installer.holds_trails(entry or ".")]
    assert [Path(entry).resolve() for entry in shadowing] == [Path(trails.__file__).parents[1]]


def test_the_backend_imports_trails_from_the_venv_only(sql):
    rows = dict(sql("SELECT key, value FROM trails.environment()"))
    assert not _inside_checkout(rows["trails.path"])
    assert rows["trails.path"].startswith(sys.prefix)
    path = sql("SELECT value FROM trails.environment() WHERE key = 'python.path'")
    assert path and not any(_inside_checkout(entry) for entry in path[0][0].split(":") if entry)


@pytest.mark.skipif(not ENVIRONMENT_FILE.exists(), reason="no Debian cluster 15/main here")
def test_make_install_wrote_no_path_of_the_checkout():
    values = installer.read_environment(ENVIRONMENT_FILE)
    assert installer.site_packages(Path(sys.prefix)) in [Path(p) for p in values["PYTHONPATH"].split(":")]
    for value in values.values():
        assert not any(_inside_checkout(entry) for entry in value.split(":") if entry), value


def test_describe_works_in_a_new_session_after_the_checkout_is_renamed(pg_dsn):
    moved = REPO.with_name(REPO.name + ".moved-by-test")
    os.rename(REPO, moved)
    try:
        connection = psycopg2.connect(pg_dsn)  # a new session: a new backend imports trails
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT name, kind FROM trails.describe('frappe') ORDER BY field")
                fields = cursor.fetchall()
        finally:
            connection.close()
    finally:
        os.rename(moved, REPO)
    assert [name for name, _ in fields][:3] == ["user_id", "item_id", "daytime"]


# --- the installer, on files of its own ------------------------------------------------------

def test_pythonpath_keeps_other_entries_and_drops_only_shadowing_trails_copies(tmp_path):
    checkout = tmp_path / "checkout" / "python"
    (checkout / "trails").mkdir(parents=True)
    (checkout / "trails" / "__init__.py").write_text("")
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    value, removed = installer.merged_pythonpath(f"/opt/other:{checkout}:/srv/more", site)
    assert value == f"/opt/other:/srv/more:{site}" and removed == [str(checkout)]
    assert installer.merged_pythonpath(value, site) == (value, [])
    assert installer.merged_pythonpath(None, site) == (str(site), [])


def test_the_environment_file_changes_only_when_a_value_changes(tmp_path):
    path = tmp_path / "environment"
    path.write_text("# comment\nLANG = 'C.UTF-8'\nPYTHONPATH = '/old'\n")
    assert installer.write_environment(path, {"PYTHONPATH": "/new", "TRAILS_CONFIG": "/etc/x.ini"})
    assert installer.read_environment(path) == {"LANG": "C.UTF-8", "PYTHONPATH": "/new",
                                                "TRAILS_CONFIG": "/etc/x.ini"}
    assert path.read_text().startswith("# comment\nLANG = 'C.UTF-8'\n")
    assert not installer.write_environment(path, {"PYTHONPATH": "/new", "TRAILS_CONFIG": "/etc/x.ini"})


def test_the_installed_config_has_absolute_paths_and_no_restart_when_unchanged(tmp_path):
    source = tmp_path / "repo" / "config.ini"
    source.parent.mkdir()
    source.write_text("[data]\ndata_dir = ../shared/data\n[coordinator]\neta = 4\n")
    target = tmp_path / "venv" / "etc" / "trails" / "config.ini"
    assert installer.install_config(source, target)
    installed = read_user_file(target)
    assert installed.get("data", "data_dir") == str((tmp_path / "shared" / "data").resolve())
    assert installed.getint("coordinator", "eta") == 4
    assert not installer.install_config(source, target)  # same content: nothing to do


def test_register_without_an_environment_file_says_what_to_set(tmp_path):
    venv = tmp_path / "venv"
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    source = tmp_path / "config.ini"
    source.write_text("")
    said = []
    result = installer.register(venv, "15/main", source, tmp_path / "missing", say=said.append)
    assert not result.environment_changed and not result.restarted
    assert any("PYTHONPATH=" in line and "site-packages" in line for line in said)


# --- settings --------------------------------------------------------------------------------

def test_defaults_ship_with_the_package_and_the_user_file_overrides_them(tmp_path, monkeypatch):
    user = tmp_path / "config.ini"
    user.write_text("[coordinator]\neta = 5\n[data]\ndata_dir = data\n")
    monkeypatch.setenv("TRAILS_CONFIG", str(user))
    config = load_config()
    assert config.getint("coordinator", "eta") == 5
    assert config.getint("coordinator", "max_epochs") == 27  # from defaults.ini
    assert config.get_path("data", "data_dir") == (tmp_path / "data").resolve()
    monkeypatch.delenv("TRAILS_CONFIG")
    assert load_config().getint("coordinator", "eta") == 3


@pytest.mark.parametrize("text, message", [("[coordinater]\neta = 3\n", "unknown section"),
                                           ("[coordinator]\netta = 3\n", "unknown setting 'etta'")])
def test_a_typo_in_the_user_file_is_an_error(tmp_path, text, message):
    user = tmp_path / "config.ini"
    user.write_text(text)
    with pytest.raises(TrailsError, match=message):
        read_user_file(user)


def test_the_repository_config_is_valid():
    read_user_file(REPO / "config.ini")


def test_the_installer_command_line_reports_a_missing_venv(tmp_path):
    result = subprocess.run([sys.executable, "-m", "trails.installer", "--venv", str(tmp_path / "none"),
                             "--config", str(REPO / "config.ini"), "--environment-file",
                             str(tmp_path / "environment")], capture_output=True, text=True)
    assert result.returncode == 1 and "make setup" in result.stderr
