#!/usr/bin/env bash
# The frozen desktop app: a one-folder PyInstaller build in dist/foley-editor/ of the torch-free runtime (the
# editor `foley-editor`, the command line `foley` (a link to the same executable), the default model, ONNX Runtime
# on the CPU). Needs the venv of packaging/setup.sh; installs the pinned PyInstaller into it (not a dependency of
# the project: setup.sh stays as fast as it was). Then runs from any folder: dist/foley-editor/foley-editor.
#   bash packaging/build_app.sh            # build (about 3-6 min on 2 cores), print the size and what takes it
#   DIST=/elsewhere bash packaging/build_app.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}
PYINSTALLER_PINS=(pyinstaller==6.22.3 pyinstaller-hooks-contrib==2026.9)
py="$VENV/bin/python"
[ -x "$py" ] || { echo "build_app: no $py; run bash packaging/setup.sh first" >&2; exit 1; }

if ! "$py" -c 'import PyInstaller, sys; sys.exit(PyInstaller.__version__ != "6.22.3")' 2>/dev/null; then
  echo "build_app: installing ${PYINSTALLER_PINS[*]} into $VENV" >&2
  "$py" -m pip install --disable-pip-version-check -q "${PYINSTALLER_PINS[@]}"
fi

nice -n 10 "$py" -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$DIST" --workpath "$WORK" \
  packaging/foley.spec
app="$DIST/foley-editor"
# Symbol tables out of the shared libraries (about 60 MB, 16 of them libpython's), except the ones that auditwheel
# vendored and patched (*.libs/: stripping them breaks their ELF layout: "ELF load command address/offset not
# page-aligned") and the executable (its appended archive)
if command -v strip >/dev/null 2>&1; then
  find "$app/_internal" -type f -name '*.so*' -not -path '*.libs/*' -print0 \
    | nice -n 10 xargs -0 -r strip --strip-unneeded 2>/dev/null || true
fi
ln -sfn foley-editor "$app/foley"  # the command line: the same executable under the name it dispatches on

# What must not be inside (the spec excludes them; a hook that pulls one in again fails the build here)
bad=$(cd "$app/_internal" && ls -d torch* training tests librosa numba llvmlite sklearn 2>/dev/null || true)
if [ -n "$bad" ]; then
  echo "build_app: the build contains what it must not: $bad" >&2
  exit 1
fi
echo "build_app: $app ($(du -sh "$app" | cut -f1)); the biggest parts:" >&2
du -sh "$app"/_internal/* 2>/dev/null | sort -rh | head -12 >&2
