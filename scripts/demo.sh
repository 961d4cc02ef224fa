#!/usr/bin/env bash
# Set up (fast when current), then run the default outage reproduction on the
# built-in default topology.
#
#   sudo bash scripts/demo.sh [testbed demo args...]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
venv=$(realpath -m "${TESTBED_VENV:-$repo/.venv}")   # same default as setup.sh

bash "$repo/scripts/setup.sh"
exec "$venv/bin/testbed" demo "$@"
