#!/bin/bash
# Set up a kiosk on a fresh Raspberry Pi OS Lite (64-bit), as root:
#
#     sudo systemd/install.sh --bundle kiosk-0.1.0-linux_aarch64.tar     (`make release`)
#
# Debian packages, the `kiosk` user and its groups, the release bundle installed
# as the first version (/opt/kiosk/versions/<version>/ with its own virtual
# environment, /opt/kiosk/current pointing at it, /opt/kiosk/guard.py: see
# kiosk/updates/install.py and guard.py), /etc/kiosk (the example configuration, if there is none yet),
# /var/lib/kiosk, the systemd units, the udev rules for the ID reader and the
# USB printer, and a console with no login on it: getty@tty1 masked (the
# touchscreen's console), no getty started on the other consoles either. Then
# edit /etc/kiosk/kiosk.toml, put central's CA and keys and the card issuers'
# keys in /etc/kiosk, and run `sudo -u kiosk /opt/kiosk/current/venv/bin/kiosk provision
# --central URL --code CODE`, then `systemctl start kiosk` (or reboot).
#
# Idempotent: each step looks first and acts only when something differs; a
# second run rewrites no file and runs no command that changes anything.
#
# --root DIR writes every file under DIR instead of / (tests, or an image being
# built): users and groups are looked up and made in DIR/etc, units enabled with
# `systemctl --root`, and nothing running is told to reload (daemon-reload,
# udevadm). The external commands (apt-get, dpkg-query, useradd, groupadd,
# usermod, systemctl, udevadm, python3) are called by name, so a test puts stubs
# for them first on PATH. apt-get always acts on the machine itself; the bundle's
# virtual environment is made with the machine's /usr/bin/python3 (an image built
# with --root must have the same Python at the same place).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(dirname "$HERE")
ROOT=/
BUNDLE=""

usage() { echo "usage: $0 [--root DIR] [--bundle kiosk-VERSION-PLATFORM.tar]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=${2:?}; shift 2 ;;
        --bundle) BUNDLE=$(realpath "${2:?}"); shift 2 ;;
        -h|--help) usage ;;
        *) usage ;;
    esac
done
ROOT=${ROOT%/}
IN_ROOT=()                       # useradd, groupadd and usermod write the root's own /etc files
[ "$ROOT" = "" ] || IN_ROOT=(--root "$ROOT")

# PC/SC for the ID reader; Python, its venv and pip (which installs a version's wheels),
# and pyscard (no wheel for the Pi: the versions' virtual environments see Debian's); the libraries Kivy's SDL2 opens for
# KMS/DRM, GLES and touch (ALSA is already in the Lite image); libusb for a USB printer;
# fonts for Arabic and Latin; time zones. Every other library is a wheel in the bundle
# (lgpio's links liblgpio in), so nothing is compiled on the device.
APT_PACKAGES=(
    pcscd libccid pcsc-tools
    python3 python3-venv python3-pip python3-pyscard
    libdrm2 libgbm1 libegl1 libgles2 libgl1 libgl1-mesa-dri libmtdev1 libudev1
    libusb-1.0-0
    polkitd
    fonts-dejavu-core fonts-hosny-amiri
    tzdata
)
# The kiosk's supplementary groups (systemd/kiosk.service): the display, input,
# the console, sound, the cabinet's GPIO, a serial printer.
GROUPS_NEEDED=(video render input tty audio gpio dialout)
UNITS=(kiosk.service kiosk-firstboot.service kiosk-selftest.service kiosk-selftest.timer
       kiosk-update.service kiosk-update.timer)
ENABLED=(kiosk.service kiosk-firstboot.service kiosk-selftest.timer kiosk-update.timer)

changed_units=0
changed_rules=0

say() { echo "install: $*"; }

# install_file SRC DEST MODE: copy when the bytes or the mode differ, and say so.
install_file() {
    local src=$1 dest=$ROOT$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        if [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then chmod "$mode" "$dest"; say "mode $mode $2"; fi
        return 1
    fi
    mkdir -p "$(dirname "$dest")"
    install -m "$mode" "$src" "$dest"
    say "wrote $2"
}

# install_text DEST MODE <<TEXT: install_file from standard input.
install_text() {
    local tmp
    tmp=$(mktemp)
    cat > "$tmp"
    local status=0
    install_file "$tmp" "$1" "$2" || status=$?
    rm -f "$tmp"
    return $status
}

# ensure_dir DIR MODE OWNER:GROUP (numeric ids, read from the root's own /etc files).
ensure_dir() {
    local dir=$ROOT$1 mode=$2 owner=$3
    [ -d "$dir" ] || { mkdir -p "$dir"; say "made $1"; }
    [ "$(stat -c %a "$dir")" = "${mode#0}" ] || { chmod "$mode" "$dir"; say "mode $mode $1"; }
    [ "$(stat -c %u:%g "$dir")" = "$owner" ] || { chown "$owner" "$dir"; say "owner $owner $1"; }
}

id_of() { awk -F: -v name="$2" '$1 == name { print $3 }' "$ROOT/etc/$1"; }

# ------------------------------------------------------------ Debian packages

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ------------------------------------------------------------ the kiosk user and its groups

for group in "${GROUPS_NEEDED[@]}" kiosk; do
    grep -q "^$group:" "$ROOT/etc/group" || { groupadd "${IN_ROOT[@]}" --system "$group"; say "group $group"; }
done
if ! grep -q '^kiosk:' "$ROOT/etc/passwd"; then
    useradd "${IN_ROOT[@]}" --system --gid kiosk --home-dir /var/lib/kiosk --no-create-home --shell /usr/sbin/nologin \
        --comment "Citizen service kiosk" kiosk
    say "user kiosk"
fi
for group in "${GROUPS_NEEDED[@]}"; do
    awk -F: -v group="$group" '$1 == group { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == "kiosk") found = 1 }
        END { exit !found }' "$ROOT/etc/group" || { usermod "${IN_ROOT[@]}" --append --groups "$group" kiosk; say "kiosk in $group"; }
done
KIOSK_IDS="$(id_of passwd kiosk):$(id_of group kiosk)"

# ------------------------------------------------------------ the application

ensure_dir /opt/kiosk 755 0:0
# The installer from this checkout, with the system's Python (no version exists yet to run it):
# the first version becomes current at once; a later bundle waits to be switched to between
# sessions by the running kiosk, on trial, as any update does.
if [ -n "$BUNDLE" ]; then
    stamp="$ROOT/opt/kiosk/.installed-bundle"
    wanted="$(basename "$BUNDLE") $(sha256sum < "$BUNDLE" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        PYTHONPATH="$SOURCE" python3 -m kiosk.updates.install --root "$ROOT/opt/kiosk" "$BUNDLE"
        echo "$wanted" > "$stamp"
        say "installed $(basename "$BUNDLE")"
    fi
elif [ ! -e "$ROOT/opt/kiosk/current" ]; then
    say "no kiosk installed yet: run again with --bundle kiosk-VERSION-linux_aarch64.tar (make release)"
fi
install_file "$SOURCE/README.md" /opt/kiosk/README.md 0644 || true

# Configuration: root's, readable by the kiosk's group; the example only when there is none.
ensure_dir /etc/kiosk 750 "0:$(id_of group kiosk)"
[ -f "$ROOT/etc/kiosk/kiosk.toml" ] || { install_file "$SOURCE/examples/kiosk.toml" /etc/kiosk/kiosk.toml 0640 || true; }
[ "$(stat -c %g "$ROOT/etc/kiosk/kiosk.toml")" = "$(id_of group kiosk)" ] || chgrp "$(id_of group kiosk)" "$ROOT/etc/kiosk/kiosk.toml"
# State: the outbox, the journal and the device key (kiosk.service's StateDirectory=, made
# here too so that `kiosk provision` can write the key before the kiosk ever started).
ensure_dir /var/lib/kiosk 700 "$KIOSK_IDS"

# ------------------------------------------------------------ udev

install_text /etc/udev/rules.d/60-kiosk.rules 0644 <<'EOF' && changed_rules=1 || true
# Installed by the kiosk's systemd/install.sh.
# The ID card reader (any CCID reader): pcscd's, never the kiosk's, which reaches it
# only through pcscd's socket. Kept awake: an autosuspended reader misses a card.
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ENV{ID_USB_INTERFACES}=="*:0b0000:*", GROUP="pcscd", MODE="0660", TEST=="power/control", ATTR{power/control}="on"
# The receipt printer, through libusb (python-escpos): the kiosk's group may open it.
# USB printer class, and the models of drivers/PRINTERS.md whose interface is vendor-specific.
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ENV{ID_USB_INTERFACES}=="*:0701??:*", GROUP="kiosk", MODE="0660", TEST=="power/control", ATTR{power/control}="on"
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTRS{idVendor}=="04b8", ATTRS{idProduct}=="0202", GROUP="kiosk", MODE="0660"
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTRS{idVendor}=="0dd4", ATTRS{idProduct}=="0205", GROUP="kiosk", MODE="0660"
# The cabinet's GPIO (Raspberry Pi OS gives it to `gpio` too; plain Debian does not).
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"
EOF
if [ "$changed_rules" = 1 ] && [ "$ROOT" = "" ]; then    # a running udev to tell, on the device only
    udevadm control --reload-rules
    udevadm trigger --subsystem-match=usb --subsystem-match=gpio
fi

# ------------------------------------------------------------ polkit

# The technician screen's reboot (`systemctl reboot`, which asks logind) is the one thing
# the kiosk user may ask of the system: not power-off, not suspend, no unit.
install_text /etc/polkit-1/rules.d/50-kiosk.rules 0644 <<'EOF' || true
// Installed by the kiosk's systemd/install.sh: the kiosk user may reboot the device.
polkit.addRule(function(action, subject) {
    if (subject.user == "kiosk" &&
        (action.id == "org.freedesktop.login1.reboot" ||
         action.id == "org.freedesktop.login1.reboot-multiple-sessions")) {
        return polkit.Result.YES;
    }
});
EOF

# ------------------------------------------------------------ systemd

for unit in "${UNITS[@]}"; do
    install_file "$HERE/$unit" "/etc/systemd/system/$unit" 0644 && changed_units=1 || true
done
# No getty on any console: none on the touchscreen's (tty1), and logind starts none on
# the others, so a keyboard's Ctrl+Alt+F<n> finds no login prompt.
install_text /etc/systemd/logind.conf.d/kiosk.conf 0644 <<'EOF' && changed_units=1 || true
# Installed by the kiosk's systemd/install.sh: no login prompt on any console.
[Login]
NAutoVTs=0
ReserveVT=0
EOF
SYSTEMCTL=(systemctl)
[ "$ROOT" = "" ] || SYSTEMCTL=(systemctl "--root=$ROOT")
[ "$changed_units" = 0 ] || [ "$ROOT" != "" ] || systemctl daemon-reload    # a running systemd: the device only
for unit in "${ENABLED[@]}"; do
    [ "$("${SYSTEMCTL[@]}" is-enabled "$unit" 2>/dev/null)" = enabled ] || { "${SYSTEMCTL[@]}" enable "$unit"; say "enabled $unit"; }
done
[ "$("${SYSTEMCTL[@]}" is-enabled getty@tty1.service 2>/dev/null)" = masked ] \
    || { "${SYSTEMCTL[@]}" mask getty@tty1.service; say "masked getty@tty1.service"; }

say "done"
