#!/usr/bin/env bash
# Install, upgrade or remove the HappyHouse door service on a Raspberry Pi.
#
# Run as root on the Pi (64-bit Raspberry Pi OS bookworm or later). Safe to
# run again: every step checks before it changes anything, an edited config
# is never overwritten, and an upgrade restarts the service once at the end.
# From a desktop, deploy/remote-install.sh builds the wheel and runs this
# script on the Pi over ssh. See deploy/README.md.

set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh [options]
       install.sh --uninstall [--purge] [options]

Install:
  --wheel PATH      install this happyhouse wheel (default: build one from the
                    source tree this script lives in)
  --bundle DIR      also install a model bundle (model.tflite + model.json) to
                    /etc/happyhouse/bundle; a new config is pointed at it; the
                    bundle it replaces is kept in /etc/happyhouse/bundle.previous
                    (happyhouse-daemon --rollback-model restores it)
  --bundle-only     with --bundle: install only the bundle on an installed
                    door and reload the service (SIGHUP: the door locks, loads
                    the new bundle and self-tests it; one that fails is refused
                    and the old model keeps serving); nothing else changes
  --opencv MODE     pip (default): opencv-python-headless from PyPI, USB
                    cameras (/dev/videoN), files, rtsp:// URLs.
                    system: Debian's python3-opencv with GStreamer and
                    libcamera, needed for a CSI ribbon camera (libcamerasrc)
  --no-apt          do not install Debian packages (they are already there)
  --no-start        install everything but do not enable or start the service

Remove:
  --uninstall       stop and disable the service, remove the unit and
                    /opt/happyhouse; keep /etc/happyhouse and /var/lib/happyhouse
  --purge           with --uninstall: also remove config, state and the user

Testing and image building:
  --root DIR        prefix every file written with DIR (a scratch root); no
                    ownership changes. It does NOT sandbox the system
                    commands: apt-get, groupadd/useradd/usermod/userdel,
                    udevadm, systemctl and pip still run on this machine
                    (combine with --dry-run to only see them)
  --dry-run         print the commands that would change the system, change
                    nothing
  -h, --help        this text
EOF
}

SERVICE=happyhouse
SERVICE_USER=happyhouse
PREFIX=/opt/happyhouse
VENV=$PREFIX/venv
ETC=/etc/happyhouse
CONF=$ETC/happyhouse.conf
BUNDLE_DEST=$ETC/bundle
STATE=/var/lib/happyhouse
UNIT=/etc/systemd/system/$SERVICE.service
UDEV_RULE=/etc/udev/rules.d/60-happyhouse-gpio.rules
# The last example config installed: a config still equal to it is unedited
# and may be upgraded; anything else is the technician's and is kept.
CONF_DIST=$PREFIX/share/happyhouse.conf.dist

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ROOT=""
DRY_RUN=0
WHEEL=""
BUNDLE=""
OPENCV=pip
APT=1
START=1
BUNDLE_ONLY=0
UNINSTALL=0
PURGE=0

die() { echo "install.sh: error: $*" >&2; exit 2; }

# the value of the option in $1, which must follow it and not be the next option:
# "--bundle --dry-run" once took "--dry-run" for the bundle's folder
need_value() {
  local what=$1; shift
  if [ $# -lt 2 ] || [[ "$2" == -* ]]; then die "$1 needs $what"; fi
}
note() { echo "install.sh: $*"; }
# What was done, or under --dry-run what would have been: "$1" = the verb now,
# "$2" = the rest. A dry run changes nothing and must not say it did.
report() {
  if [ "$DRY_RUN" = 1 ]; then note "would $1 $2 (dry run: nothing was changed)"; else note "$1 $2"; fi
}

# Run a command that changes the system, or print it under --dry-run.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

# Ownership only means something on the real system, not in a scratch root.
own() {
  [ -n "$ROOT" ] && return 0
  run chown "$@"
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --wheel) need_value "a path" "$@"; WHEEL=$2; shift ;;
      --bundle) need_value "a folder" "$@"; BUNDLE=$2; shift ;;
      --opencv) need_value "pip or system" "$@"; OPENCV=$2; shift ;;
      --root) need_value "a folder" "$@"; ROOT=$2; shift ;;
      --no-apt) APT=0 ;;
      --no-start) START=0 ;;
      --bundle-only) BUNDLE_ONLY=1 ;;
      --dry-run) DRY_RUN=1 ;;
      --uninstall) UNINSTALL=1 ;;
      --purge) PURGE=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  case "$OPENCV" in pip|system) ;; *) die "--opencv must be pip or system, not '$OPENCV'" ;; esac
  [ "$PURGE" = 0 ] || [ "$UNINSTALL" = 1 ] || die "--purge only goes with --uninstall"
  [ "$BUNDLE_ONLY" = 0 ] || [ -n "$BUNDLE" ] || die "--bundle-only needs --bundle DIR"
  [ "$BUNDLE_ONLY" = 0 ] || [ "$UNINSTALL" = 0 ] || die "--bundle-only does not go with --uninstall"
  if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a folder"
    ROOT=$(cd "$ROOT" && pwd)
  fi
  if [ -n "$WHEEL" ]; then
    [ -f "$WHEEL" ] || die "wheel $WHEEL does not exist"
    case "$WHEEL" in *.whl) ;; *) die "$WHEEL is not a .whl file" ;; esac
    WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
  fi
  if [ -n "$BUNDLE" ]; then
    if [ ! -f "$BUNDLE/model.tflite" ] || [ ! -f "$BUNDLE/model.json" ]; then
      die "bundle $BUNDLE must contain model.tflite and model.json"
    fi
    BUNDLE=$(cd "$BUNDLE" && pwd)
  fi
  if [ -z "$ROOT" ] && [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 ...), or use --dry-run"
  fi
}

# A file shipped beside this script (staged copy) or in the source tree.
shipped() {
  local name=$1
  for dir in "$SCRIPT_DIR" "$SCRIPT_DIR/../deploy"; do
    if [ -f "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  die "$name not found beside $0"
}

apt_has() {
  apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'
}

install_packages() {
  [ "$APT" = 1 ] || { note "skipping Debian packages (--no-apt)"; return 0; }
  # python3-venv: the venv. python3-systemd: journald fields and sd_notify
  # without compiling systemd-python. python3-lgpio: gpiozero's pin factory
  # on every Pi and the only one that works on a Pi 5 (RP1).
  local pkgs=(python3-venv python3-pip python3-systemd)
  if apt_has python3-lgpio; then pkgs+=(python3-lgpio); fi
  if [ "$OPENCV" = system ]; then
    # Debian's OpenCV is built with GStreamer: libcamerasrc reaches a CSI
    # camera. Its numpy must be Debian's too (it is built against numpy 1.x).
    pkgs+=(python3-opencv python3-numpy python3-h5py opencv-data
           gstreamer1.0-libcamera gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
  fi
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
}

ensure_user() {
  local group
  for group in gpio video; do
    if ! getent group "$group" >/dev/null; then
      # Raspberry Pi OS has both; elsewhere gpio must be created and given
      # the GPIO devices by a udev rule.
      run groupadd --system "$group"
      if [ "$group" = gpio ]; then install_udev_rule; fi
    fi
  done
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    run useradd --system --user-group --home-dir "$STATE" --no-create-home \
      --shell /usr/sbin/nologin --groups gpio,video \
      --comment "HappyHouse door service" "$SERVICE_USER"
  else
    run usermod --append --groups gpio,video "$SERVICE_USER"
  fi
}

install_udev_rule() {
  local tmp
  tmp=$(mktemp)
  cat >"$tmp" <<'EOF'
# Installed by happyhouse install.sh: the gpio group may use the GPIO chips.
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"
KERNEL=="gpiomem*", GROUP="gpio", MODE="0660"
EOF
  if put_file "$tmp" "$UDEV_RULE" 0644; then
    run udevadm control --reload
    run udevadm trigger --subsystem-match=gpio
  fi
  rm -f "$tmp"
}

# Copy src to ROOT/dst with mode when the content differs; true if it did.
put_file() {
  local src=$1 dst=$ROOT$2 mode=$3
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
    run chmod "$mode" "$dst"
    return 1
  fi
  run install -D -m "$mode" "$src" "$dst"
  return 0
}

build_wheel() {
  # No --wheel: build one from the source tree around this script.
  local src=$SCRIPT_DIR/..
  [ -f "$src/setup.cfg" ] || die "no --wheel given and $SCRIPT_DIR is not in a source tree"
  local out
  if [ "$DRY_RUN" = 1 ]; then
    out=/tmp/happyhouse-wheel
    run "$ROOT$VENV/bin/pip" wheel --quiet --no-deps --wheel-dir "$out" "$src"
    WHEEL="$out/happyhouse-VERSION-py3-none-any.whl"
  else
    out=$(mktemp -d)
    run "$ROOT$VENV/bin/pip" wheel --quiet --no-deps --wheel-dir "$out" "$src"
    WHEEL=$(find "$out" -name 'happyhouse-*.whl' | head -n 1)
    [ -n "$WHEEL" ] || die "building the wheel from $src produced nothing"
  fi
}

# Python 3.11 or later: before it, a timed wait (the latch's own relock timer, the
# camera wait) ran on the wall clock, which NTP steps at a Pi's boot (there is no
# clock chip), so a step back held a relock for as long as the step.
require_python() {
  local py=$1 version
  if [ ! -x "$py" ] && [ "$DRY_RUN" = 1 ]; then return 0; fi  # no venv made in a dry run
  version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || version=""
  case "$version" in
    3.1[1-9]|3.[2-9][0-9]) ;;
    *) die "the door needs Python 3.11 or later (64-bit Raspberry Pi OS bookworm or later); $py is ${version:-not a working Python}: upgrade the system (nothing of the door was started)" ;;
  esac
}

install_venv() {
  local venv=$ROOT$VENV
  if [ ! -x "$venv/bin/python" ]; then
    # --system-site-packages: lgpio, systemd (and for --opencv system:
    # OpenCV, numpy, h5py) come from Debian.
    run python3 -m venv --system-site-packages "$venv"
  fi
  require_python "$venv/bin/python"
  [ -n "$WHEEL" ] || build_wheel
  local pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
  if [ "$OPENCV" = pip ]; then
    # a file:// URL: a space in the wheel's path must be %20 (pip refuses it as is)
    run "${pip[@]}" "happyhouse[pi] @ file://${WHEEL// /%20}"
  else
    # The [pi] extra would pull opencv-python-headless (numpy 2, no
    # GStreamer) over Debian's OpenCV: install only what Debian lacks.
    run "${pip[@]}" "ai-edge-litert>=1.2" "gpiozero>=2.0"
  fi
  if ! apt_has python3-lgpio; then
    note "python3-lgpio is not packaged here: installing lgpio from PyPI"
    run "${pip[@]}" lgpio
  fi
  # Same version rebuilt: pip would keep the old files without this.
  run "${pip[@]}" --force-reinstall --no-deps "$WHEEL"
}

install_docs() {
  local doc
  for doc in "$SCRIPT_DIR"/../docs/*.md "$SCRIPT_DIR"/docs/*.md; do
    [ -f "$doc" ] || continue
    put_file "$doc" "$PREFIX/docs/$(basename "$doc")" 0644 || true
  done
}

install_bundle() {
  [ -n "$BUNDLE" ] || return 0
  local dst=$ROOT$BUNDLE_DEST
  if [ -d "$dst" ] && diff -rq "$BUNDLE" "$dst" >/dev/null 2>&1; then
    note "model bundle $BUNDLE_DEST is up to date"
    return 0
  fi
  # One install or rollback at a time, from the staging copy to the swap: the
  # rollback holds the same lock (daemon/model_history.py). Racing it, the new
  # bundle was moved *into* the old one's folder and the previous lost; two
  # installs at once deleted each other's staging and left no bundle at all.
  if [ "$DRY_RUN" != 1 ] && command -v flock >/dev/null 2>&1; then
    mkdir -p "$(dirname "$dst")"
    exec 9>"$(dirname "$dst")/.$(basename "$dst").swap.lock"
    if ! flock -w "${HAPPYHOUSE_SWAP_WAIT:-10}" 9; then
      die "another install or rollback of $dst is under way; run install.sh again when it is done (the bundle was not installed)"
    fi
  fi
  # Copy beside, then swap: the service never sees half a bundle.
  run rm -rf "$dst.new"
  # a full card: cp's own lines alone, exit 1 and a half copy left filling the card
  if ! run mkdir -p "$dst.new" || ! run cp -R "$BUNDLE/." "$dst.new/"; then
    rm -rf "$dst.new"
    die "the bundle could not be copied to $dst.new (message above: a full disk?); it was not installed, the door keeps its model"
  fi
  run chmod -R u=rwX,g=rX,o= "$dst.new"
  own -R "root:$SERVICE_USER" "$dst.new"
  # The copy must load and pass its self-test with this Pi's runtime before it
  # replaces anything: a broken bundle would only show at the next (re)start,
  # as a door locked and out of service. It is checked with the door's own
  # config (its [face] settings) under $ROOT, never the build host's /etc, and
  # a config the daemon rejects is named as such, not blamed on the bundle.
  local daemon=$ROOT$VENV/bin/happyhouse-daemon settings=$ROOT$CONF made=""
  if [ ! -f "$settings" ]; then
    settings=$(mktemp) made=$settings  # no config yet (a first install): the defaults
  elif [ "$DRY_RUN" != 1 ] && ! "$daemon" --print-config --config "$settings" >/dev/null; then
    run rm -rf "$dst.new"
    die "$CONF is rejected by the daemon (message above); fix it, then run install.sh again (the bundle was not installed)"
  fi
  if ! run "$daemon" --verify-model --model "$dst.new" --config "$settings" --log-level ERROR; then
    [ -z "$made" ] || rm -f "$made"
    run rm -rf "$dst.new"
    die "the bundle $BUNDLE does not load here (message above); it was not installed, the door keeps its model"
  fi
  [ -z "$made" ] || rm -f "$made"
  # The bundle it replaces is kept as $dst.previous: `happyhouse-daemon
  # --rollback-model` puts it back (then `systemctl reload happyhouse`). mv -T
  # refuses to move a folder into another rather than nest it.
  # The two renames are not cut by a signal (a SIGTERM or a dropped ssh session between
  # them left bundle.previous and no bundle): one that comes is answered after them.
  # With no $dst (such an earlier swap cut short), $dst.previous is the bundle the door
  # served: it stays, and becomes the one a rollback restores (it was deleted).
  local cut=""
  trap 'cut=INT' INT
  trap 'cut=TERM' TERM
  trap 'cut=HUP' HUP
  trap 'cut=QUIT' QUIT
  if [ -d "$dst" ]; then
    run rm -rf "$dst.previous"
    run mv -T "$dst" "$dst.previous"
  fi
  run mv -T "$dst.new" "$dst"
  trap - INT TERM HUP QUIT
  if [ "$DRY_RUN" != 1 ]; then exec 9>&-; fi
  if [ -n "$cut" ]; then
    die "interrupted (SIG$cut) just after the bundle was swapped in: $dst is the new bundle, $dst.previous the one before; run install.sh again to finish (the service was not told)"
  fi
}

# whether config file $1 sets [model] bundle to the installed bundle, however spaced
# ("bundle=/etc/happyhouse/bundle" was told to "set '[model] bundle = ...'")
names_bundle() {
  grep -Eq "^[[:space:]]*bundle[[:space:]]*=[[:space:]]*$BUNDLE_DEST/?[[:space:]]*([#;].*)?$" "$1" 2>/dev/null
}

install_config() {
  local example conf=$ROOT$CONF dist=$ROOT$CONF_DIST tmp
  example=$(shipped happyhouse.conf)
  tmp=$(mktemp)
  cp "$example" "$tmp"
  if [ -n "$BUNDLE" ] || names_bundle "$conf"; then
    # Point a fresh config at the installed bundle: when one was just installed, or
    # when the config it replaces served it (a plain upgrade must not switch the door
    # back to the shipped model, nor onto a bundle installed with --bundle-only that
    # the technician never turned on).
    sed -i "s|^#\\{0,1\\}bundle =.*|bundle = $BUNDLE_DEST|" "$tmp"
  fi
  run mkdir -p "$ROOT$ETC"
  if [ ! -f "$conf" ] || { [ -f "$dist" ] && cmp -s "$conf" "$dist"; }; then
    # New, or still exactly what we installed last time: safe to replace.
    put_file "$tmp" "$CONF" 0640 || true
    put_file "$tmp" "$CONF_DIST" 0644 || true
    run rm -f "$conf.new"
  elif cmp -s "$conf" "$tmp"; then
    put_file "$tmp" "$CONF_DIST" 0644 || true
  else
    note "keeping your edited $CONF; the new example is $CONF.new (compare with: diff $CONF $CONF.new)"
    put_file "$tmp" "$CONF.new" 0640 || true
    own "root:$SERVICE_USER" "$conf.new"
  fi
  own "root:$SERVICE_USER" "$conf"
  rm -f "$tmp"
  if [ -n "$BUNDLE" ] && ! names_bundle "$conf"; then
    note "set '[model] bundle = $BUNDLE_DEST' in $CONF to use the installed bundle"
  fi
}

install_unit() {
  put_file "$(shipped happyhouse.service)" "$UNIT" 0644 || true
  run systemctl daemon-reload
}

check_config() {
  # A config the daemon rejects must not reach a restart loop: say so now.
  local daemon=$ROOT$VENV/bin/happyhouse-daemon printed="" bundle model=() as=()
  if [ "$DRY_RUN" = 1 ]; then
    run "$daemon" --print-config --config "$ROOT$CONF"
  elif ! printed=$("$daemon" --print-config --config "$ROOT$CONF"); then
    die "$CONF is rejected by the daemon (message above); fix it, then run install.sh again"
  fi
  # Nor a model this release will not arm: an older release's adapted bundle can be
  # too poorly proven for this one (the door locked, out of service, after "started").
  # The daemon's own reading of the config names the bundle (comments, "bundle:", ~);
  # under --root that path is the Pi's, looked for under the root; on the Pi it is
  # checked as the service reads it: its user, from /.
  bundle=$(printf '%s\n' "$printed" | sed -n 's/^bundle = //p' | tail -n 1)
  # as the kernel will name it: no //, /./, /../ (nor, on the Pi, a link into /home)
  if [ -n "$bundle" ] && [ "${bundle#/}" != "$bundle" ]; then
    if [ -n "$ROOT" ]; then bundle=$(realpath -m -s "$bundle"); else bundle=$(realpath -m "$bundle"); fi
  fi
  # where the unit's sandbox lets the service see it (ProtectHome=, PrivateTmp=, and
  # WorkingDirectory=/run/happyhouse for a relative path): a check that passed here
  # would otherwise restart into a door that cannot find its model
  case "$bundle" in
    "" | /etc/* | /opt/* | /srv/* | /usr/* | /var/lib/* | /mnt/* | /media/*) ;;
    /home/* | /root/* | /run/user/* | /tmp/* | /var/tmp/* | /run/happyhouse/*)
      die "[model] bundle = $bundle in $CONF: the service cannot keep it there (its unit hides /home, /root and /tmp, and empties /run/happyhouse); install the bundle with install.sh --bundle (it goes to $BUNDLE_DEST), then run install.sh again" ;;
    /*) ;;
    *) die "[model] bundle = $bundle in $CONF is not an absolute path (the service runs in /run/happyhouse); give the full path, e.g. $BUNDLE_DEST" ;;
  esac
  if [ -n "$ROOT" ]; then
    case "$bundle" in /*) model=(--model "$ROOT$bundle") ;; esac
  elif command -v runuser >/dev/null 2>&1 && getent passwd "$SERVICE_USER" >/dev/null; then
    as=(runuser -u "$SERVICE_USER" --)
  fi
  if ! (cd / && run "${as[@]}" "$daemon" --verify-model "${model[@]}" --config "$ROOT$CONF" --log-level ERROR); then
    die "the door would not arm with the model bundle $CONF names (${bundle:-the shipped one}) and its [model] settings (message above: fix what it names); the service was not restarted. For the bundle itself: rebuild it with happyhouse-adapt, put the previous one back (happyhouse-daemon --rollback-model), or remove '[model] bundle' from $CONF to use the shipped model; then run install.sh again"
  fi
}

start_service() {
  if [ "$START" = 0 ]; then
    note "not starting (--no-start); when ready: systemctl enable $SERVICE && systemctl restart $SERVICE"
    return 0
  fi
  run systemctl enable "$SERVICE"
  # restart = start if stopped; picks up a new wheel, unit or config.
  run systemctl restart "$SERVICE"
  if [ "$DRY_RUN" = 1 ]; then
    report start "$SERVICE"
  else
    note "started; follow it with: journalctl -u $SERVICE -f"
  fi
}

do_install() {
  install_packages
  ensure_user
  run mkdir -p "$ROOT$STATE"
  run chmod 0700 "$ROOT$STATE"
  own "$SERVICE_USER:$SERVICE_USER" "$ROOT$STATE"
  install_venv
  install_docs
  install_bundle
  install_config
  install_unit
  check_config
  start_service
  if [ "$DRY_RUN" = 1 ]; then report install "$VENV, $UNIT, config $CONF"
  else note "installed: $VENV, $UNIT, config $CONF"; fi
}

do_bundle_only() {
  [ -x "$ROOT$VENV/bin/happyhouse-daemon" ] ||
    die "HappyHouse is not installed here ($VENV): run install.sh without --bundle-only first"
  # the bundle is proven by the installed daemon's --verify-model: one from before it
  # said "unrecognized arguments", blamed on the bundle
  "$ROOT$VENV/bin/happyhouse-daemon" --help 2>/dev/null | grep -q -- --verify-model ||
    die "the HappyHouse installed here predates this installer: upgrade it first (install.sh, or remote-install.sh, without --bundle-only); the bundle was not installed"
  install_bundle
  if ! names_bundle "$ROOT$CONF"; then
    note "set '[model] bundle = $BUNDLE_DEST' in $CONF to use the installed bundle"
  fi
  if [ "$START" = 1 ]; then
    # Reload, not restart: a bundle that fails its self-test is refused and the
    # running door keeps its model (a restart would leave it locked and failed).
    # Nothing happens when the service is not running.
    run systemctl try-reload-or-restart "$SERVICE"
    note "reloaded; check it with: journalctl -u $SERVICE -n 20 (a refused bundle says so)"
  fi
}

do_uninstall() {
  if [ -f "$ROOT$UNIT" ]; then
    run systemctl disable --now "$SERVICE" || true
    run rm -f "$ROOT$UNIT"
    run systemctl daemon-reload
    # ExecStopPost has locked the latch; if the unit was gone already, the
    # technician must check the door by hand.
  fi
  run rm -rf "$ROOT$PREFIX"
  if [ "$PURGE" = 1 ]; then
    run rm -rf "$ROOT$ETC" "$ROOT$STATE"
    if [ -f "$ROOT$UDEV_RULE" ]; then run rm -f "$ROOT$UDEV_RULE"; fi
    if getent passwd "$SERVICE_USER" >/dev/null; then run userdel "$SERVICE_USER"; fi
    if [ "$DRY_RUN" = 1 ]; then report purge "config, state and user $SERVICE_USER"
    else note "purged: config, state and user $SERVICE_USER removed"; fi
  elif [ "$DRY_RUN" = 1 ]; then
    report remove "the service and $PREFIX, keeping $ETC and $STATE"
  else
    note "removed; kept $ETC and $STATE (use --uninstall --purge to remove them)"
  fi
}

main() {
  parse_args "$@"
  if [ "$UNINSTALL" = 1 ]; then do_uninstall
  elif [ "$BUNDLE_ONLY" = 1 ]; then do_bundle_only
  else do_install; fi
}

main "$@"
