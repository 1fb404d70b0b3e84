#!/usr/bin/env bash
# Validates compose.yaml (or the file given) without a Docker engine: `docker-compose config -q` (installed
# from apt when missing and we are root) and the dclint linter from npm, warnings included. Each runs when
# available; at least one must. Exits non-zero on any problem; prints one line when the file is valid.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
file="${1:-compose.yaml}"
dclint="dclint@3.1.0"

[[ -f "$file" ]] || { echo "validate-compose: $file not found" >&2; exit 2; }

compose=()
if command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "validate-compose: installing docker-compose from apt..." >&2
  if timeout 300 apt-get update -qq && timeout 300 env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; then
    compose=(docker-compose)
  else
    echo "validate-compose: could not install docker-compose; going on without it" >&2
  fi
fi

checked=()
if ((${#compose[@]})); then
  if ! out=$("${compose[@]}" -f "$file" config -q 2>&1); then
    printf '%s\n' "$out" >&2
    echo "validate-compose: $file is invalid (${compose[*]} config)" >&2
    exit 1
  fi
  checked+=("${compose[*]} config")
fi

# npx uses the npm cache first, so a warm cache needs no registry. Probe before linting: a failure to fetch
# dclint must not read as a failed lint.
export npm_config_prefer_offline=true npm_config_update_notifier=false npm_config_fund=false
if command -v npx >/dev/null 2>&1 && timeout 120 npx --yes "$dclint" --version >/dev/null 2>&1; then
  if ! out=$(npx --yes "$dclint" --max-warnings 0 --no-color "$file" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "validate-compose: $file has dclint problems" >&2
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
echo "validate-compose: $file is valid (${list%, })"
