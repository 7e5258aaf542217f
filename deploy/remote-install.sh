#!/usr/bin/env bash
# From a desktop checkout: build the happyhouse wheel, copy it with the
# installer, unit, example config and docs to a Raspberry Pi, and run
# install.sh there with sudo.
#
#   deploy/remote-install.sh pi@door.local
#   deploy/remote-install.sh --bundle runs/best/bundle pi@door.local -- --opencv system
#
# Everything after "--" is passed to install.sh on the Pi.

set -euo pipefail

usage() {
  cat <<'EOF'
Usage: remote-install.sh [options] [user@]host [-- install.sh options]

  --wheel PATH     use this wheel instead of building one from this checkout
  --bundle DIR     also install this model bundle (install.sh --bundle)
  --ssh-option OPT pass -o OPT to ssh and scp (repeatable), e.g. Port=2222
  --dry-run        print the commands, build and copy nothing
  -h, --help       this text

Needs ssh access to the Pi and sudo there. The wheel is built with
"$PYTHON -m pip wheel --no-deps" (PYTHON defaults to python3).
EOF
}

die() { echo "remote-install.sh: error: $*" >&2; exit 2; }

# the value of the option in $1, which must follow it and not be the next option:
# "--bundle --dry-run" once took "--dry-run" for the bundle's folder
need_value() {
  local what=$1; shift
  if [ $# -lt 2 ] || [[ "$2" == -* ]]; then die "$1 needs $what"; fi
}

run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'; printf ' %q' "$@"; printf '\n'
  else
    "$@"
  fi
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
PYTHON=${PYTHON:-python3}
DRY_RUN=0
WHEEL=""
BUNDLE=""
HOST=""
SSH_OPTS=()
REMOTE_ARGS=()

while [ $# -gt 0 ]; do
  case "$1" in
    --wheel) need_value "a path" "$@"; WHEEL=$2; shift ;;
    --bundle) need_value "a folder" "$@"; BUNDLE=$2; shift ;;
    --ssh-option) need_value "a value" "$@"; SSH_OPTS+=(-o "$2"); shift ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; REMOTE_ARGS=("$@"); break ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) [ -z "$HOST" ] || die "one host only (got '$HOST' and '$1')"; HOST=$1 ;;
  esac
  shift
done

[ -n "$HOST" ] || { usage >&2; die "no host given, e.g. pi@door.local"; }
case "$HOST" in *[[:space:]]*|*:*) die "host '$HOST' must be [user@]host, without spaces or a path" ;; esac
if [ -n "$WHEEL" ] && [ ! -f "$WHEEL" ]; then die "wheel $WHEEL does not exist"; fi
if [ -n "$BUNDLE" ] && [ ! -f "$BUNDLE/model.tflite" ]; then
  die "bundle $BUNDLE has no model.tflite"
fi
for f in install.sh happyhouse.service happyhouse.conf; do
  [ -f "$SCRIPT_DIR/$f" ] || die "$SCRIPT_DIR/$f is missing"
done

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

if [ -z "$WHEEL" ]; then
  run "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$STAGE" "$REPO"
  WHEEL_NAME=happyhouse-VERSION-py3-none-any.whl
  if [ "$DRY_RUN" = 0 ]; then
    WHEEL_NAME=$(cd "$STAGE" && find . -maxdepth 1 -name 'happyhouse-*.whl' | sed 's|^\./||' | head -n 1)
    [ -n "$WHEEL_NAME" ] || die "building the wheel produced nothing"
  fi
else
  WHEEL_NAME=$(basename "$WHEEL")
  cp "$WHEEL" "$STAGE/"
fi
cp "$SCRIPT_DIR/install.sh" "$SCRIPT_DIR/happyhouse.service" "$SCRIPT_DIR/happyhouse.conf" "$STAGE/"
mkdir -p "$STAGE/docs"
cp "$REPO"/docs/*.md "$STAGE/docs/" 2>/dev/null || true
INSTALL_ARGS=(--wheel "\$dir/$WHEEL_NAME")
if [ -n "$BUNDLE" ]; then
  cp -R "$BUNDLE" "$STAGE/bundle"
  INSTALL_ARGS+=(--bundle "\$dir/bundle")
fi

# A private folder on the Pi, removed whatever happens to the install.
REMOTE_DIR=/tmp/happyhouse-install
if [ "$DRY_RUN" = 0 ]; then
  REMOTE_DIR=$(ssh "${SSH_OPTS[@]}" "$HOST" 'mktemp -d /tmp/happyhouse-install.XXXXXX')
else
  run ssh "${SSH_OPTS[@]}" "$HOST" 'mktemp -d /tmp/happyhouse-install.XXXXXX'
fi
run scp -q -r "${SSH_OPTS[@]}" "$STAGE"/. "$HOST:$REMOTE_DIR/"

remote_cmd="dir=$(printf %q "$REMOTE_DIR"); sudo bash \"\$dir/install.sh\""
for arg in "${INSTALL_ARGS[@]}"; do remote_cmd+=" \"$arg\""; done
for arg in "${REMOTE_ARGS[@]}"; do remote_cmd+=" $(printf %q "$arg")"; done
remote_cmd+="; rc=\$?; rm -rf \"\$dir\"; exit \$rc"
# -t: sudo may ask for a password.
run ssh -t "${SSH_OPTS[@]}" "$HOST" "$remote_cmd"
