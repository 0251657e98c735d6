#!/usr/bin/env bash
# Makes sure the Docker engine answers and debootstrap is installed, as the local lab needs
# (see playbooks/local-lab-up.yml). Quiet when all is in place. As root on Debian it installs
# what is missing and starts the engine; elsewhere it says what to do.
set -euo pipefail

# dockerd, debootstrap and the iptables dockerd runs live in the sbin directories, which a
# user's (or CI's) PATH may lack.
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"

readonly dockerd_log=/var/log/dockerd.log
readonly wait_seconds=60

say() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

can_fix() { [[ ${EUID} -eq 0 && -r /etc/debian_version ]] && command -v apt-get >/dev/null; }

apt_updated=false
apt_install() {
  if ! "${apt_updated}"; then
    apt-get update -q
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

docker_answers() { docker info >/dev/null 2>&1; }

have() { command -v "$1" >/dev/null; }

if ! have debootstrap; then
  can_fix || die "debootstrap is missing: install it (sudo apt-get install debootstrap) or rerun this script as root on Debian."
  say "installing debootstrap"
  apt_install debootstrap
fi

if command -v docker >/dev/null && docker_answers; then
  exit 0
fi

if ! can_fix; then
  if command -v docker >/dev/null && [[ -S /var/run/docker.sock && ! -w /var/run/docker.sock ]]; then
    die "the Docker engine runs but $(id -un) may not use it: join the docker group or run as root."
  fi
  die "no Docker engine answers 'docker info': install and start it (Debian: sudo apt-get install docker.io && sudo systemctl start docker), or rerun this script as root on Debian."
fi

if ! have dockerd || ! have docker; then
  say "installing docker.io"
  apt_install docker.io
fi

# A dockerd still starting up answers soon; a second one would fight it over /var/run/docker.sock.
if [[ -d /run/systemd/system ]]; then
  say "starting docker with systemd"
  systemctl start docker
elif command -v pgrep >/dev/null && pgrep -x dockerd >/dev/null; then
  say "dockerd is already running; waiting for it to answer"
else
  # No systemd (containers, CI): run the daemon detached, logging where the operator looks.
  say "starting dockerd in the background (log: ${dockerd_log})"
  setsid dockerd >>"${dockerd_log}" 2>&1 </dev/null &
fi

for ((i = 0; i < wait_seconds; i++)); do
  docker_answers && exit 0
  sleep 1
done
die "the Docker engine did not answer within ${wait_seconds} s; see ${dockerd_log} or 'journalctl -u docker'."
