#!/bin/sh
# Add Studio to the desktop's application menu (for this user), pointing at this folder.
#   ./install-desktop-entry.sh             install or update (run it again after moving the folder)
#   ./install-desktop-entry.sh --uninstall  remove the menu entry and the icon
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
entry="$data/applications/studio.desktop"
icon="$data/icons/hicolor/scalable/apps/studio.svg"

refresh() {
  # Menus pick up the change without these, only later; neither is required.
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$entry" "$icon"
  refresh
  echo "removed $entry and $icon"
  exit 0
fi
if [ ! -x "$here/studio-gui" ]; then
  echo "error: $here/studio-gui not found; run this script from the unpacked studio folder" >&2
  exit 2
fi
mkdir -p "$(dirname "$entry")" "$(dirname "$icon")"
cp "$here/studio.svg" "$icon"
# Exec takes the absolute path, quoted and escaped as the desktop-entry spec says (the folder may
# hold spaces, quotes or a %).
exec_path=$(printf '%s' "$here/studio-gui" | sed -e 's/\\/\\\\\\\\/g' -e 's/["`$]/\\\\&/g' -e 's/%/%%/g')
while IFS= read -r line; do
  case $line in
    Exec=*) printf 'Exec="%s" %%f\n' "$exec_path" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$here/studio.desktop" > "$entry.part"
mv "$entry.part" "$entry"
refresh
echo "installed $entry (Studio is in your applications menu)"
