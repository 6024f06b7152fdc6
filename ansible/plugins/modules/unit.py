#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: unitwright developers
# MIT or Apache-2.0 (see the repository's Cargo.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: unit
short_description: Start, stop, restart or reload systemd units with their job results
version_added: "0.1.0"
description:
  - Runs C(unitwright start|stop|restart|reload UNIT... --json) on the managed host, which
    talks D-Bus to the system or user service manager (never C(systemctl)) and waits for
    every job; all units of one task run concurrently on one connection.
  - C(started) and C(stopped) are idempotent; the units' state is read first with
    C(unitwright status --json) and only units that need it get a job.
  - C(restarted) and C(reloaded) always run their job and always report a change.
  - Each job's result is returned in I(jobs) (the C(--json) objects of unitwright's job
    verbs), so a failed start says why (C(result exit-code, ExecStart exited with status 3)).
options:
  name:
    description:
      - The units. A name without a type suffix means C(.service), as with systemctl.
    type: list
    elements: str
    required: true
    aliases: [units]
  state:
    description:
      - C(started) starts the units that are not active; C(stopped) stops those that are
        active or activating; C(restarted) restarts all; C(reloaded) runs each unit's
        C(ExecReload=).
    type: str
    required: true
    choices: [started, stopped, restarted, reloaded]
  no_block:
    description:
      - Return once the jobs are queued instead of waiting for their results.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for each job (unitwright's default is 25; 0 waits forever).
    type: float
attributes:
  check_mode:
    support: full
    description: Reads the units' state and reports what would change; runs no job.
  diff_mode:
    support: none
    description: Units have no file content to show.
extends_documentation_fragment:
  - unitwright.systemd.common
author:
  - unitwright developers (@unitwright)
'''

EXAMPLES = r'''
- name: Start two services and wait for both
  unitwright.systemd.unit:
    name: [web, worker@1]
    state: started

- name: Restart a user service of the connecting user
  unitwright.systemd.unit:
    name: sync.service
    state: restarted
    scope: user
'''

RETURN = r'''
units:
  description: The unit names after adding C(.service) where no type was given.
  returned: always
  type: list
  elements: str
acted_on:
  description: The units that got a job (or would have, in check mode).
  returned: always
  type: list
  elements: str
jobs:
  description:
    - One object per job, as C(unitwright start --json) prints it (fields C(unit), C(verb),
      C(result), C(success), C(failure), C(active_state), C(error), ...; see docs/json.md).
  returned: when a job ran
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.unitwright.systemd.plugins.module_utils.unitwright import (
    COMMON_ARGS, json_lines, json_value, run)

UNIT_TYPES = ('.service', '.socket', '.target', '.device', '.mount', '.automount', '.swap',
              '.timer', '.path', '.slice', '.scope')
VERBS = dict(started='start', stopped='stop', restarted='restart', reloaded='reload')
UP = ('active', 'reloading', 'activating')


def mangle(name):
    return name if name.endswith(UNIT_TYPES) else name + '.service'


def current_states(module, units):
    """ActiveState of each unit; units that do not exist are missing from the result."""
    rc, out, err = run(module, ['status', '--json', '-n', '0'] + units)
    if rc not in (0, 3, 4):
        module.fail_json(msg='reading the state of %s failed: %s' % (' '.join(units), err.strip()),
                         rc=rc)
    found = json_value(module, out, 'status') or []
    return dict((u['unit'], u['active_state']) for u in found)


def main():
    argument_spec = dict(
        name=dict(type='list', elements='str', required=True, aliases=['units']),
        state=dict(type='str', required=True, choices=list(VERBS)),
        no_block=dict(type='bool', default=False),
        timeout=dict(type='float'),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    units = [mangle(n) for n in module.params['name']]
    state = module.params['state']
    if state == 'started':
        states = current_states(module, units)
        todo = [u for u in units if states.get(u) not in UP]
    elif state == 'stopped':
        states = current_states(module, units)
        todo = [u for u in units if states.get(u, 'inactive') not in ('inactive', 'failed')]
    else:
        todo = list(units)
    result = dict(changed=bool(todo), units=units, acted_on=todo)
    if module.check_mode or not todo:
        module.exit_json(**result)
    args = [VERBS[state], '--json']
    if module.params['no_block']:
        args.append('--no-block')
    if module.params['timeout'] is not None:
        args.extend(['--timeout', str(module.params['timeout'])])
    rc, out, err = run(module, args + ['--'] + todo)
    jobs = json_lines(out)
    result['jobs'] = jobs
    if rc != 0:
        failed = [j for j in jobs if not j.get('success')]
        why = '; '.join('%s: %s' % (j['unit'], j.get('failure') or j.get('error')) for j in failed)
        module.fail_json(msg='%s failed: %s' % (VERBS[state], why or err.strip()), rc=rc,
                         stderr=err, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
