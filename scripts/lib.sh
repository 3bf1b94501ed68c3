# Shared settings for the scripts in this folder. Source it; do not run it.
#
# Everything heavy lives outside the checkout, so a fresh clone on the same machine
# reuses the compiled dependencies, the Maven downloads and the broker install.

if [ -z "${HOOKRELAY_CACHE:-}" ]; then
  if mkdir -p /var/cache/hookrelay 2>/dev/null && [ -w /var/cache/hookrelay ]; then
    HOOKRELAY_CACHE=/var/cache/hookrelay
  else
    HOOKRELAY_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/hookrelay"
  fi
fi
export HOOKRELAY_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOOKRELAY_CACHE/target}"

# Port of the test broker's client listener; the controller listens on the next port.
export KAFKA_PORT="${KAFKA_PORT:-19092}"
export HOOKRELAY_TEST_BOOTSTRAP="${HOOKRELAY_TEST_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"

log() { printf '%s %s\n' "[$(date +%H:%M:%S)]" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs apt-get install for the packages that are missing, once per package.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
}
