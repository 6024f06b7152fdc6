# -*- coding: utf-8 -*-
# Copyright: unitwright developers
# MIT or Apache-2.0 (see the repository's Cargo.toml)
"""Running ``unitwright ... --json`` on the managed host, shared by the modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

COMMON_ARGS = dict(
    scope=dict(type='str', default='system', choices=['system', 'user']),
    executable=dict(type='str', default='unitwright'),
)


def base_command(module):
    """The unitwright binary and the scope option."""
    executable = module.get_bin_path(module.params['executable'], required=True)
    cmd = [executable]
    if module.params['scope'] == 'user':
        cmd.append('--user')
    else:
        cmd.append('--system')
    return cmd


def run(module, args, data=None, check_rc=False):
    """Runs unitwright with ``args``; returns (rc, stdout, stderr)."""
    return module.run_command(base_command(module) + args, data=data, check_rc=check_rc,
                              binary_data=data is not None)


def json_lines(text):
    """Parses JSON Lines output (one object per line)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def json_value(module, text, what):
    """Parses one JSON document, failing the module with ``what`` when it is not JSON."""
    try:
        return json.loads(text) if text.strip() else None
    except ValueError as e:
        module.fail_json(msg='%s: unitwright printed no valid JSON: %s' % (what, e), stdout=text)
        return None
