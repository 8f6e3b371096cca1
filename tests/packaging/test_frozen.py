"""The desktop packaging (packaging/README.md): the editor's self-test entry point, the user install into a
temporary prefix (a fake build: seconds, no PyInstaller), and the frozen build's smoke test where a build exists."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "dist" / "foley-editor"
DEMO = ROOT / "resources" / "demo" / "test_walk_00058.mp4"


def _isolated_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, HOME=str(tmp / "home"), XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_DATA_HOME=str(tmp / "data"), XDG_CACHE_HOME=str(tmp / "cache"), QT_QPA_PLATFORM="offscreen")
    env.pop("PREFIX", None)
    return env


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    """What build_app.sh leaves, reduced to what install_desktop.sh touches: two launchers and the icon."""
    b = tmp_path / "build" / "foley-editor"
    (b / "_internal" / "resources" / "app").mkdir(parents=True)
    (b / "_internal" / "resources" / "app" / "foley.svg").write_text((ROOT / "resources/app/foley.svg").read_text())
    exe = b / "foley-editor"
    exe.write_text('#!/bin/sh\necho "fake editor $(basename "$0") $*"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    (b / "foley").symlink_to("foley-editor")
    return b


def _install(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "packaging" / "install_desktop.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_install_desktop_into_a_temp_prefix_and_uninstall_leaves_what_was_there(fake_build: Path,
                                                                                 tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    prefix = tmp_path / "home" / ".local"
    other = prefix / "share" / "applications" / "someone-else.desktop"  # was there before: must stay
    other.parent.mkdir(parents=True)
    other.write_text("[Desktop Entry]\nName=Other\n")
    before = _tree(tmp_path / "home")

    for _ in range(2):  # a second install replaces the first one
        r = _install("--prefix", str(prefix), "--from", str(fake_build), env=env)
        assert r.returncode == 0, r.stderr
    share = prefix / "share"
    desktop = (share / "applications" / "mdsgen-foley-editor.desktop").read_text()
    assert f'Exec="{prefix}/opt/foley-editor/foley-editor" %f' in desktop
    assert "MimeType=application/x-foley-project;" in desktop and "Icon=mdsgen-foley-editor" in desktop
    assert '<glob pattern="*.foleyproj"/>' in (share / "mime" / "packages" / "mdsgen-foley-editor.xml").read_text()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "mdsgen-foley-editor.svg").is_file()
    assert (share / "icons" / "hicolor" / "scalable" / "mimetypes" / "application-x-foley-project.svg").is_file()
    if (share / "mime" / "globs2").exists():  # update-mime-database ran
        assert "application/x-foley-project:*.foleyproj" in (share / "mime" / "globs2").read_text()
    for name, shown in (("foley-editor", "foley-editor"), ("foley", "foley")):
        out = subprocess.run([str(prefix / "bin" / name), "a.foleyproj"], capture_output=True, text=True)
        assert out.stdout.strip() == f"fake editor {shown} a.foleyproj"  # the name the frozen app dispatches on
    manifest = (share / "mdsgen-foley-editor" / "install-manifest").read_text().split("\n")
    assert f"t {prefix}/opt/foley-editor" in manifest and f"l {prefix}/bin/foley" in manifest

    r = _install("--uninstall", "--prefix", str(prefix), env=env)
    assert r.returncode == 0, r.stderr
    assert _tree(tmp_path / "home") == before
    assert other.read_text().startswith("[Desktop Entry]")
    r = _install("--uninstall", "--prefix", str(prefix), env=env)  # twice: nothing to do, no error
    assert r.returncode == 0 and "nothing to uninstall" in r.stderr


def test_install_into_an_empty_home_removes_every_folder_it_made(fake_build: Path, tmp_path: Path) -> None:
    env = _isolated_env(tmp_path)
    prefix = tmp_path / "fresh" / "prefix"
    assert _install("--prefix", str(prefix), "--from", str(fake_build), env=env).returncode == 0
    assert (prefix / "bin" / "foley").is_symlink()
    assert _install("--uninstall", "--prefix", str(prefix), env=env).returncode == 0
    assert not (tmp_path / "fresh").exists()  # it made fresh/ too (the prefix's parent)


def test_install_without_a_build_says_so(tmp_path: Path) -> None:
    r = _install("--prefix", str(tmp_path / "p"), "--from", str(tmp_path / "nothing"), env=_isolated_env(tmp_path))
    assert r.returncode == 1 and "build_app.sh" in r.stderr and not (tmp_path / "p").exists()


@pytest.mark.slow
def test_smoke_test_entry_point_unfrozen(tmp_path: Path) -> None:
    """`foley-app VIDEO --smoke-test OUT` in the venv: the same self-test the frozen build runs (default model)."""
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "foley_app", str(DEMO), "--smoke-test", str(out), "--smoke-steps", "2"],
                       env=_isolated_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert '"ok": true' in (out / "smoke-test.json").read_text()
    assert (out / "test_walk_00058_foley.mp4").stat().st_size > 0 and (out / "test_walk_00058.foleyproj").is_file()


def test_smoke_test_entry_point_fails_on_a_missing_video(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "foley_app", str(tmp_path / "missing.mp4"), "--smoke-test", str(out)],
                       env=_isolated_env(tmp_path), capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]
    assert '"ok": false' in (out / "smoke-test.json").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (BUILD / "foley-editor").is_file(),
                    reason="no frozen build in dist/foley-editor (bash packaging/build_app.sh makes it)")
def test_frozen_build_smoke_test(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(ROOT / "packaging" / "smoke_test.sh"), str(BUILD)], env=_isolated_env(tmp_path),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "smoke_test: passed" in r.stderr
