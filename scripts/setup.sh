#!/usr/bin/env bash
# Set up this machine (Debian 12, as root) for the outage testbed by applying
# playbooks/lab.yml, the one source of truth, through ansible-runner.
#
#   sudo bash scripts/setup.sh [--force]
#
# Environment:
#   TESTBED_VENV       project venv (default: <repo>/.venv)
#   TESTBED_BOOTSTRAP  venv holding ansible-core + ansible-runner
#                      (default: /opt/outage-testbed/bootstrap)
set -euo pipefail

started=$SECONDS
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# Absolute paths: they go into the playbook's extra vars and the stamp hash.
venv=$(realpath -m "${TESTBED_VENV:-$repo/.venv}")
bootstrap=$(realpath -m "${TESTBED_BOOTSTRAP:-/opt/outage-testbed/bootstrap}")
playbook=$repo/playbooks/lab.yml

force=0
for arg in "$@"; do
    case $arg in
        --force) force=1 ;;
        -h | --help) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "setup.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

if [[ $EUID -ne 0 ]]; then
    echo "setup.sh: must run as root (it installs Debian packages): sudo bash $0" >&2
    exit 1
fi

# Fast path: nothing that the set-up depends on changed since the last
# successful apply, so skip ansible entirely (seconds instead of a minute).
stamp_file=$venv/.setup-stamp
stamp=$({ cat "$playbook" "$repo/pyproject.toml"; printf '%s\n' "$repo" "$venv"; } \
    | sha256sum | cut -d' ' -f1)
if [[ $force -eq 0 && -x $venv/bin/testbed && -f $stamp_file \
      && $(<"$stamp_file") == "$stamp" ]]; then
    echo "set-up is current (playbooks/lab.yml unchanged); skipping. Use --force to re-apply."
    exit 0
fi

# The bootstrap venv needs python3-venv and pip; the playbook's apt tasks
# need python3-apt (a minimal Debian image may lack all three).
missing=()
for pkg in python3-venv python3-pip python3-apt; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "==> apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Ansible lives in its own venv, apart from the project's, so that a broken
# project install can never break the tool that repairs it.
if ! "$bootstrap/bin/python" -c 'import ansible, ansible_runner' 2>/dev/null \
        || [[ ! -x $bootstrap/bin/ansible-playbook ]]; then
    echo "==> bootstrap venv $bootstrap (ansible-core, ansible-runner)"
    /usr/bin/python3 -m venv "$bootstrap"
    # Ranges the playbook was tested with (Vagrant's Debian ansible is 2.14).
    "$bootstrap/bin/python" -m pip install --quiet 'ansible-core>=2.14,<2.20' \
        'ansible-runner>=2.3,<2.5'
fi

echo "==> applying playbooks/lab.yml (project_dir=$repo venv_dir=$venv)"
# ansible-runner starts ansible-playbook from PATH. Its private data dir is
# scratch (inventory, artifacts): a temp dir, removed whatever happens.
# ansible_python_interpreter=/usr/bin/python3: the apt module needs python3-apt,
# which exists only for the system python, not in any venv.
PATH=$bootstrap/bin:$PATH "$bootstrap/bin/python" - "$playbook" "$repo" "$venv" <<'PY'
import shutil
import sys
import tempfile

import ansible_runner

playbook, project_dir, venv_dir = sys.argv[1:4]
private = tempfile.mkdtemp(prefix="testbed-setup-")
try:
    result = ansible_runner.run(
        private_data_dir=private,
        playbook=playbook,
        inventory="localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3",
        extravars={"project_dir": project_dir, "venv_dir": venv_dir},
        # YAML results make a failed command's stderr readable, not one JSON line.
        # ansible-playbook runs on a pty; keep CI logs free of colour codes.
        envvars={"ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml"}
        | ({} if sys.stdout.isatty() else {"ANSIBLE_NOCOLOR": "1"}),
    )
finally:
    shutil.rmtree(private, ignore_errors=True)
if result.status != "successful" or result.rc != 0:
    print(f"setup.sh: playbooks/lab.yml {result.status} (rc={result.rc}); "
          "see the failed task above", file=sys.stderr)
    sys.exit(result.rc or 1)
PY

# Only a successful apply may arm the fast path.
printf '%s\n' "$stamp" >"$stamp_file"
echo "set-up done in $((SECONDS - started))s (venv: $venv)"
