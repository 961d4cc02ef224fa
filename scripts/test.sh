#!/usr/bin/env bash
# Set up (fast when current), then run every check: ruff, mypy, pytest.
# All three always run; the exit status is non-zero if any failed.
#
#   sudo bash scripts/test.sh [pytest args...]
set -uo pipefail   # no -e: a failing check must not hide the ones after it

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
venv=$(realpath -m "${TESTBED_VENV:-$repo/.venv}")   # same default as setup.sh

bash "$repo/scripts/setup.sh" || { echo "test.sh: set-up failed" >&2; exit 1; }
cd "$repo" || exit 1

failed=()
echo "==> ruff"
"$venv/bin/ruff" check testbed tests benchmarks || failed+=(ruff)
echo "==> mypy"
"$venv/bin/mypy" testbed || failed+=(mypy)
echo "==> pytest"
"$venv/bin/python" -m pytest tests "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
    # Exit 5 = nothing collected: an import error or a broken suite, never a pass.
    echo "test.sh: pytest collected no tests; the test suite is broken (or your selection matched nothing)" >&2
fi
[[ $rc -eq 0 ]] || failed+=("pytest(rc=$rc)")

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "test.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
# On success pytest's own summary stays the last line of the output.
