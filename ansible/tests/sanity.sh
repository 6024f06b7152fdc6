#!/bin/sh
# `ansible-test sanity` for the collection, as its CI would run it:
#   ansible/tests/sanity.sh [ansible-test sanity options...]
# ansible-core comes from ansible/tests/setup-venv.sh. ansible-test wants the collection at
# .../ansible_collections/unitwright/systemd, so a copy goes to a scratch directory. Its
# per-test virtual environments live under $UNITWRIGHT_ANSIBLE_TEST_HOME (default
# target/ansible-test-home, kept between runs), never in the real ~/.ansible.
#
# ansible-test bootstraps pip in those environments with a get-pip script it downloads from a
# host that only Ansible's CI reaches; the script it would run is replaced here by one that
# bootstraps Python's bundled pip (ensurepip) and then installs what was asked from PyPI.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=${UNITWRIGHT_ANSIBLE_VENV:-$target/ansible-venv}
"$root/ansible/tests/setup-venv.sh" "$venv" >/dev/null
export HOME="${UNITWRIGHT_ANSIBLE_TEST_HOME:-$target/ansible-test-home}"
at=$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" "$at/_internal/python_requirements.py" | head -1)
cache="$HOME/.ansible/test/cache/get_pip_$(echo "$pip_version" | tr . _).py"
mkdir -p "$(dirname "$cache")"
cat > "$cache" <<'PY'
"""Stand-in for get-pip.py: Python's bundled pip, then pip installs the arguments."""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip hides pip's configuration files (PIP_CONFIG_FILE=/dev/null); the install from
# PyPI needs them (e.g. a site's certificate authority in /etc/pip.conf).
env = dict((k, v) for k, v in os.environ.items() if k != 'PIP_CONFIG_FILE')
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args, env=env)
PY
work=$(mktemp -d "${TMPDIR:-/tmp}/unitwright-ansible-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ansible_collections/unitwright"
cp -r "$root/ansible" "$work/ansible_collections/unitwright/systemd"
rm -rf "$work/ansible_collections/unitwright/systemd/tests/output"
cd "$work/ansible_collections/unitwright/systemd"
PATH="$venv/bin:$PATH" ansible-test sanity --python "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --requirements "$@"
