"""The emulator's Kaggle-like environment: which Python it takes, and what it warns about."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kaggle_emulator import image


def _venv(tmp_path: Path, version: str) -> Path:
    target = tmp_path / f"py{version}"
    target.mkdir()
    (target / "pyvenv.cfg").write_text(f"home = /x/bin\nversion = {version}\n")
    return target


@pytest.mark.parametrize(
    ("version", "warned"),
    [("3.12.1", True), ("3.12.2", True), ("3.12.3", False), ("3.12.10", False)],
)
def test_a_python_that_cannot_start_threads_at_shutdown_is_named(tmp_path, caplog, version, warned):
    with caplog.at_level(logging.WARNING, logger=image.__name__):
        image._warn_if_shutdown_defect(_venv(tmp_path, version))
    said = "can't create new thread at interpreter shutdown" in caplog.text
    assert said is warned, caplog.text


def test_the_newest_pyenv_python_is_taken_by_version_not_by_name(tmp_path, monkeypatch):
    for version in ("3.12.1", "3.12.9", "3.12.10"):
        bin_dir = tmp_path / "versions" / version / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3.12").touch()
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    assert image.find_python("3.12").parents[1].name == "3.12.10"


def test_building_says_where_and_how_to_reuse_one(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(image.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(image, "find_python", lambda: (_ for _ in ()).throw(image.ImageError("x")))
    with caplog.at_level(logging.WARNING, logger=image.__name__), pytest.raises(image.ImageError):
        image.prepare_image()
    assert f"no Kaggle-like Python 3.12 environment in {image.image_dir()}" in caplog.text
    assert f"point {image.CACHE_ENV} at an existing one to reuse it" in caplog.text
