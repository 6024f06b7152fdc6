#!/bin/sh
# Installs ansible-core from PyPI into a venv for tests/ansible.rs and ansible/tests/sanity.sh:
#   ansible/tests/setup-venv.sh [VENV]     (default: $UNITWRIGHT_ANSIBLE_VENV or target/ansible-venv)
# python3-venv comes from packaging/install-build-deps.sh. Idempotent and quiet when done.
set -eu
cd "$(dirname "$0")/../.."
venv=${1:-${UNITWRIGHT_ANSIBLE_VENV:-${CARGO_TARGET_DIR:-target}/ansible-venv}}
# A venv whose directory moved (a renamed worktree) keeps scripts whose #! names the old path:
# it is made again rather than failing later in every test.
if ! "$venv/bin/ansible-playbook" --version >/dev/null 2>&1; then
  if [ -f "$venv/pyvenv.cfg" ]; then
    rm -rf "$venv"
  fi
  python3 -m venv "$venv"
  # 2.16-2.19 run their controller on Debian 12's Python 3.11.
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'ansible-core>=2.16,<2.20'
fi
"$venv/bin/ansible" --version | head -1
