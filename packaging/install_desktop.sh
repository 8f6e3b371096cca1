#!/usr/bin/env bash
# Install the frozen app (bash packaging/build_app.sh) for this user, no root: the build in
# PREFIX/opt/foley-editor, launchers PREFIX/bin/foley-editor and PREFIX/bin/foley, a freedesktop menu entry, an
# icon and the MIME type of project files (*.foleyproj: a double-click opens them in the editor). PREFIX is
# ~/.local by default. Everything added is listed in PREFIX/share/mdsgen-foley-editor/install-manifest; --uninstall
# removes exactly that (and the folders the install made), then refreshes the desktop and MIME databases.
#   bash packaging/install_desktop.sh [--prefix DIR] [--from BUILD_DIR]
#   bash packaging/install_desktop.sh --uninstall [--prefix DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-$HOME/.local}
FROM=${FROM:-dist/foley-editor}
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --from) FROM=$2; shift 2 ;;
    --from=*) FROM=${1#*=}; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install_desktop: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$PREFIX" in /*) ;; *) PREFIX=$PWD/$PREFIX ;; esac
PREFIX=${PREFIX%/}

ID=mdsgen-foley-editor
MIME_TYPE=application/x-foley-project
OPT="$PREFIX/opt/foley-editor"
BIN="$PREFIX/bin"
SHARE="$PREFIX/share"
STATE="$SHARE/$ID"
MANIFEST="$STATE/install-manifest"

refresh_databases() {
  if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$SHARE/applications" ]; then
    update-desktop-database -q "$SHARE/applications" 2>/dev/null || true
  fi
  if command -v update-mime-database >/dev/null 2>&1 && [ -d "$SHARE/mime/packages" ]; then
    update-mime-database "$SHARE/mime" 2>/dev/null || true
  fi
  if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$SHARE/icons/hicolor/index.theme" ]; then
    gtk-update-icon-cache -q -t "$SHARE/icons/hicolor" 2>/dev/null || true
  fi
}

uninstall() {
  if [ ! -f "$MANIFEST" ]; then
    echo "install_desktop: nothing to uninstall in $PREFIX (no $MANIFEST)" >&2
    return 0
  fi
  # files and links first, then the build's tree, then the folders the install made (deepest first) and the
  # databases' generated files in the folders it made (mime/, applications/: nothing else is in them)
  local kind path
  while read -r kind path; do
    case "$kind" in f|l) rm -f -- "$path" ;; t) rm -rf -- "$path" ;; esac
  done < "$MANIFEST"
  local made
  made=$(grep '^d ' "$MANIFEST.dirs" 2>/dev/null | cut -c3- | sort -r || true)
  rm -f -- "$MANIFEST" "$MANIFEST.dirs"
  echo "$made" | while read -r path; do
    [ -n "$path" ] || continue
    # in the folders the install made, what the database tools generated goes too (when no one else's is left)
    if [ "$path" = "$SHARE/mime" ] && [ ! -d "$path/packages" ]; then
      rm -rf -- "$path"
    elif [ "$path" = "$SHARE/applications" ]; then
      rm -f -- "$path/mimeinfo.cache"
    fi
    rmdir -- "$path" 2>/dev/null || true
  done
  refresh_databases
  echo "install_desktop: removed the Foley editor from $PREFIX" >&2
}

if [ "$action" = uninstall ]; then
  uninstall
  exit 0
fi

[ -x "$FROM/foley-editor" ] || { echo "install_desktop: no build in $FROM (bash packaging/build_app.sh)" >&2; exit 1; }
FROM=$(cd "$FROM" && pwd)
[ -f "$MANIFEST" ] && uninstall  # a re-install replaces the earlier one

# the folders this install makes (removed again by --uninstall when empty)
dirs=()
mkd() {
  local d=$1 parts=() p
  while [ ! -d "$d" ]; do parts=("$d" "${parts[@]}"); d=$(dirname "$d"); done
  for p in "${parts[@]}"; do mkdir -- "$p"; dirs+=("$p"); done
}
mkd "$PREFIX"
mkd "$STATE"
: > "$MANIFEST"
record() { echo "$1 $2" >> "$MANIFEST"; }

mkd "$PREFIX/opt"
cp -a "$FROM" "$OPT"
record t "$OPT"

mkd "$BIN"
for name in foley-editor foley; do
  ln -sfn "$OPT/$name" "$BIN/$name"
  record l "$BIN/$name"
done

icon_src="$FROM/_internal/resources/app/foley.svg"
[ -f "$icon_src" ] || icon_src=resources/app/foley.svg
mkd "$SHARE/icons/hicolor/scalable/apps"
cp "$icon_src" "$SHARE/icons/hicolor/scalable/apps/$ID.svg"
record f "$SHARE/icons/hicolor/scalable/apps/$ID.svg"
mkd "$SHARE/icons/hicolor/scalable/mimetypes"
cp "$icon_src" "$SHARE/icons/hicolor/scalable/mimetypes/${MIME_TYPE/\//-}.svg"
record f "$SHARE/icons/hicolor/scalable/mimetypes/${MIME_TYPE/\//-}.svg"

mkd "$SHARE/mime/packages"
cat > "$SHARE/mime/packages/$ID.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="$MIME_TYPE">
    <comment>Foley editor project</comment>
    <icon name="${MIME_TYPE/\//-}"/>
    <glob pattern="*.foleyproj"/>
  </mime-type>
</mime-info>
XML
record f "$SHARE/mime/packages/$ID.xml"

mkd "$SHARE/applications"
cat > "$SHARE/applications/$ID.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Version=1.0
Name=Foley Editor
GenericName=Foley generator
Comment=Generate sound effects in sync with a silent video (MDSGen), audition, splice, export
Exec="$OPT/foley-editor" %f
TryExec=$OPT/foley-editor
Icon=$ID
Terminal=false
Categories=AudioVideo;Audio;AudioVideoEditing;
MimeType=$MIME_TYPE;video/mp4;video/quicktime;video/x-matroska;video/webm;video/x-msvideo;
StartupWMClass=foley-editor
DESKTOP
record f "$SHARE/applications/$ID.desktop"

printf 'd %s\n' "${dirs[@]}" > "$MANIFEST.dirs"
refresh_databases
echo "install_desktop: installed in $OPT; launchers in $BIN (foley-editor, foley); menu entry $ID.desktop;" \
  "*.foleyproj opens in the editor. Remove with: bash packaging/install_desktop.sh --uninstall --prefix $PREFIX" >&2
case ":$PATH:" in *":$BIN:"*) ;; *) echo "install_desktop: note: $BIN is not on your PATH" >&2 ;; esac
