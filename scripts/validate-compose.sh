#!/usr/bin/env bash
# Validates compose.yaml (or the file given) without a Docker engine: `docker-compose config -q` (installed
# from apt when missing and we are root) and the dclint linter from npm, warnings included. Each runs when
# available; at least one must. Exits non-zero on any problem; prints one line when the file is valid.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
file="${1:-$root/compose.yaml}"
name="${1:-compose.yaml}"
dclint="dclint@3.1.0"

[[ -f "$file" ]] || { echo "validate-compose: $name not found" >&2; exit 2; }

compose=()
if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "validate-compose: installing docker-compose from apt..." >&2
  if out=$(timeout 300 apt-get update -qq 2>&1 && DEBIAN_FRONTEND=noninteractive timeout 300 \
    apt-get install -y -qq --no-install-recommends docker-compose 2>&1); then
    compose=(docker-compose)
  else
    printf '%s\n' "$out" | tail -n 5 >&2
    echo "validate-compose: could not install docker-compose; going on without it" >&2
  fi
fi

checked=()
if ((${#compose[@]})); then
  if ! out=$("${compose[@]}" -f "$file" config -q 2>&1); then
    printf '%s\n' "$out" >&2
    echo "validate-compose: $name is invalid (${compose[*]} config)" >&2
    exit 1
  fi
  checked+=("${compose[*]} config")
fi

# prefer_offline: a warm npm cache needs no registry (~1 s); one retry: no registry fails in ~10 s, not 70.
# Probe before linting, so that failing to fetch dclint does not read as a failed lint.
export npm_config_prefer_offline=true npm_config_fetch_retries=1 npm_config_update_notifier=false
if command -v npx >/dev/null 2>&1 && timeout 60 npx --yes "$dclint" --version >/dev/null 2>&1; then
  if ! out=$(npx --yes "$dclint" --max-warnings 0 --no-color "$file" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "validate-compose: $name has dclint problems" >&2
    exit 1
  fi
  checked+=("$dclint")
else
  echo "validate-compose: $dclint unavailable (no npx or npm registry); skipped" >&2
fi

if ((${#checked[@]} == 0)); then
  echo "validate-compose: no validator available (need docker-compose, or npx with the npm registry)" >&2
  exit 2
fi
printf -v list '%s, ' "${checked[@]}"
echo "validate-compose: $name is valid (${list%, })"
