#!/bin/sh
# Install the scanner's systemd units for the user running this script and this checkout:
#   sh deploy/systemd/install.sh            (from the checkout, as the station's user)
# It fills in @USER@ and @SCANNER_DIR@, copies the env file once, and reloads systemd.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
user=${SCANNER_USER:-$(id -un)}
if [ ! -x "$checkout/.venv/bin/scanner" ]; then
    echo "No $checkout/.venv/bin/scanner yet: run 'make run' once first." >&2
    exit 1
fi
for unit in "$here"/scanner-*.service "$here"/scanner.target; do
    sed -e "s|@USER@|$user|g" -e "s|@SCANNER_DIR@|$checkout|g" "$unit" |
        sudo tee "/etc/systemd/system/$(basename "$unit")" >/dev/null
done
sudo mkdir -p /etc/scanner
[ -e /etc/scanner/scanner.env ] || sudo cp "$here/scanner.env.example" /etc/scanner/scanner.env
sudo systemctl daemon-reload
echo "Installed for user $user and $checkout. Next: sudo systemctl enable --now scanner.target"
