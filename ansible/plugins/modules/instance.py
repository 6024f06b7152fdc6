#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: unitwright developers
# MIT or Apache-2.0 (see the repository's Cargo.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: instance
short_description: Start or stop an instance of a systemd template unit with its own settings
version_added: "0.1.0"
description:
  - Runs C(unitwright instance start|stop|list --json) on the managed host. The instance
    unit is C(TEMPLATE) with the escaped I(id) (exactly C(systemd-escape --template)), so any
    id works, including ones with slashes, spaces or non-ASCII characters.
  - Settings are stored by unitwright for that instance only (mode 0600) and read by the
    unit through C(unitwright instance exec); no unit file is written and no daemon-reload
    happens.
  - Idempotent. C(started) does nothing when the instance is already active; settings take
    effect when an instance starts, so to change the settings of a running instance stop it
    first. C(stopped) does nothing when it is not active.
options:
  template:
    description:
      - The template unit, e.g. C(console@.service) (C(console@) and C(console) mean the same).
    type: str
    required: true
  id:
    description:
      - The instance id, unescaped.
    type: str
    required: true
  state:
    description:
      - Whether the instance should be running.
    type: str
    default: started
    choices: [started, stopped]
  settings:
    description:
      - Settings of the instance (C(KEY=VALUE) each, C(--set)). A value C(auto-port)
        allocates a free TCP port on 127.0.0.1.
      - Values appear on the command line of C(unitwright) on the managed host; use
        I(secret_settings) for secrets.
    type: dict
    default: {}
  secret_settings:
    description:
      - Settings whose values are secret. They reach unitwright through files readable only
        by the task's user (C(--set-file)), never a command line, and are never returned or
        logged.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Lists the instances and reports what would change; starts or stops nothing.
  diff_mode:
    support: none
    description: Settings values are not shown.
extends_documentation_fragment:
  - unitwright.systemd.common
author:
  - unitwright developers (@unitwright)
'''

EXAMPLES = r'''
- name: A console for node 7 with its own port and password
  unitwright.systemd.instance:
    template: console@.service
    id: "node 7/rack:b"
    settings:
      PORT: auto-port
    secret_settings:
      PASSWORD: "{{ console_password }}"

- name: Stop it
  unitwright.systemd.instance:
    template: console@.service
    id: "node 7/rack:b"
    state: stopped
'''

RETURN = r'''
unit:
  description: The instance unit, e.g. C(console@node\x207-rack:b.service).
  returned: when known (always except check mode before a first start)
  type: str
active_state:
  description: The instance's C(ActiveState) after the task.
  returned: always
  type: str
settings:
  description:
    - The non-secret settings as stored, including allocated ports (C(auto-port)).
  returned: when the instance was started by this task
  type: dict
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.unitwright.systemd.plugins.module_utils.unitwright import (
    COMMON_ARGS, json_value, run)


def find(module, template, id_):
    rc, out, err = run(module, ['instance', 'list', template, '--json'])
    if rc != 0:
        module.fail_json(msg='listing the instances of %s failed: %s' % (template, err.strip()),
                         rc=rc)
    for item in json_value(module, out, 'instance list') or []:
        if item.get('id') == id_:
            return item
    return None


def main():
    argument_spec = dict(
        template=dict(type='str', required=True),
        id=dict(type='str', required=True),
        state=dict(type='str', default='started', choices=['started', 'stopped']),
        settings=dict(type='dict', default={}),
        secret_settings=dict(type='dict', default={}, no_log=True),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    current = find(module, p['template'], p['id'])
    up = ('active', 'activating', 'reloading')
    active = current is not None and current.get('active_state') in up
    result = dict(changed=False, active_state=(current or {}).get('active_state', 'inactive'))
    if current:
        result['unit'] = current['unit']
    if p['state'] == 'started' and active:
        wanted = sorted(list(p['settings']) + list(p['secret_settings']))
        if sorted(current.get('keys') or []) != wanted:
            module.warn('%s is running with settings %s, not %s; stop it to change them'
                        % (current['unit'], current.get('keys'), wanted))
        module.exit_json(**result)
    if p['state'] == 'stopped' and not active:
        module.exit_json(**result)
    result['changed'] = True
    if module.check_mode:
        module.exit_json(**result)
    if p['state'] == 'stopped':
        rc, out, err = run(module, ['instance', 'stop', p['template'], p['id']])
        if rc != 0:
            module.fail_json(msg=err.strip(), rc=rc, **result)
        result['active_state'] = 'inactive'
        module.exit_json(**result)
    args = ['instance', 'start', p['template'], p['id'], '--json']
    for key, value in p['settings'].items():
        args.extend(['--set', '%s=%s' % (key, value)])
    secrets_dir = tempfile.mkdtemp(prefix='unitwright-secrets-')
    try:
        os.chmod(secrets_dir, 0o700)
        for i, (key, value) in enumerate(p['secret_settings'].items()):
            path = os.path.join(secrets_dir, str(i))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'w') as f:
                f.write('%s' % value)
            args.extend(['--set-file', '%s=%s' % (key, path)])
        rc, out, err = run(module, args)
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)
    if rc != 0:
        module.fail_json(msg=err.strip(), rc=rc, **result)
    started = json_value(module, out, 'instance start') or {}
    secret_keys = set(p['secret_settings'])
    result.update(
        unit=started.get('unit'),
        active_state=started.get('active_state'),
        settings=dict((k, v) for k, v in (started.get('settings') or {}).items()
                      if k not in secret_keys),
    )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
