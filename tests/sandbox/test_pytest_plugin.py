"""The pytest plugin is opt-in and its fixture names are the provider's own.

Each case runs a separate pytest in an empty project (a temporary directory), so this repository's
conftest does not take part; ``--fixtures`` lists what a user's run would see, starting no server.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PLUGIN = "perkville_provider.sandbox.pytest_plugin"


def fixture_names(project: Path, *args: str) -> set[str]:
    """The fixture names a pytest run in ``project`` offers (``pytest --fixtures``)."""
    (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (project / "pytest.ini").write_text("[pytest]\n")
    command = [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"]
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [*command, "-c", "pytest.ini", "--confcutdir", str(project), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(re.findall(r"^(\w+)(?: \[\w+ scope\])? -- ", result.stdout, re.M))


def test_installing_the_provider_adds_no_fixture_to_a_users_run(tmp_path: Path) -> None:
    names = fixture_names(tmp_path)
    assert "tmp_path" in names  # the listing is read correctly
    assert not {n for n in names if n == "sandbox" or n.startswith("perkville")}


def test_the_enabled_plugin_offers_only_prefixed_fixtures(tmp_path: Path) -> None:
    names = fixture_names(tmp_path, "-p", PLUGIN)
    assert {"perkville_sandbox", "perkville_sandbox_connection"} <= names
    assert "sandbox" not in names
