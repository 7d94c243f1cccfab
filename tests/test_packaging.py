"""The wheel ships the stages under the package's name: a user's own `train.py` or `inspector/` beside their data
never shadows trlprep's, and trlprep never shadows theirs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if shutil.which("uv") is None:
        pytest.skip("uv builds the wheel, and it is not on PATH")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(["uv", "build", "--wheel", "--out-dir", str(out), str(REPO)], check=True, capture_output=True)
    return next(out.glob("trlprep-*.whl"))


def test_the_wheel_owns_only_the_trlprep_name(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"trlprep"}
    assert "trlprep/train/recipe.py" in names and "trlprep/inspector/rules/catalog.py" in names
    assert "trlprep/train/trl_fields.json" in names


def test_a_users_train_py_and_trlprep_both_import(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("WHOSE = 'the user'\n")
    code = ("import train, trlprep.train.recipe as recipe, trlprep.inspector as inspector\n"
            "print(train.WHOSE, recipe.run_recipe.__name__, inspector.__file__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True,
                          env={"PYTHONPATH": str(site), "PATH": ""})
    assert done.returncode == 0, done.stderr
    whose, function, where = done.stdout.rsplit(" ", 2)
    assert (whose, function) == ("the user", "run_recipe")
    assert where.startswith(str(site / "trlprep" / "inspector"))
