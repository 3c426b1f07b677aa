"""The package installs as `moodops.*` from a built wheel, not as top-level folders."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_built_wheel_maps_folders_into_the_moodops_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, text=True)
    wheel = next(tmp_path.glob("moodops-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("moodops/components/datasets/deap.py", "moodops/components/features/spectral.py",
                   "moodops/components/models/mood_reader.py", "moodops/pipelines/evaluate.py",
                   "moodops/orchestrator/cli.py"):
        assert module in names, module
    assert not any(n.startswith(("components/", "pipelines/", "orchestrator/", "tests/")) for n in names)
    assert "moodops/__init__.py" not in names  # a namespace package
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "moodops = moodops.orchestrator.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("import moodops.orchestrator.cli, moodops.components.features as f, moodops.pipelines.evaluate; "
            "print(f.__file__)")
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().startswith(str(unpacked)), out.stdout


def test_no_top_level_components_package_is_importable(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('components'))"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "moodops." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("components", "pipelines", "orchestrator")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed
