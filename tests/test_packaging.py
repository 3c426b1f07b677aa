"""The package installs as `moodops.*` from a built wheel, not as top-level folders."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.split()
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and not {".venv", "build", ".git", "__pycache__"} & set(p.relative_to(ROOT).parts)]


@pytest.mark.slow
def test_built_wheel_maps_folders_into_the_moodops_namespace(tmp_path):
    # Build from a copy of the tracked files: an in-tree build/ left by an earlier build keeps modules that
    # were since moved, and would hide a package missing from pyproject's list.
    source = tmp_path / "src"
    tracked = _tracked_files()
    for rel in tracked:
        if (ROOT / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, source / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True, text=True)
    wheel = next(tmp_path.glob("moodops-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    expected = {"moodops/" + rel for rel in tracked
                if rel.endswith(".py") and rel.split("/")[0] in ("components", "pipelines", "orchestrator")}
    assert expected, "no library modules found"
    assert not expected - set(names), sorted(expected - set(names))[:5]
    for module in ("moodops/components/datasets/deap/deap.py", "moodops/components/features/spectral.py",
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
