#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: unitwright developers
# MIT or Apache-2.0 (see the repository's Cargo.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: quadlet
short_description: Install, update or remove a Podman Quadlet app through unitwright
version_added: "0.1.0"
description:
  - Makes the Quadlet files of an app on the managed host exactly the given ones with
    C(unitwright quadlet apply --app APP --json), or removes the app with
    C(unitwright quadlet rm --app APP).
  - unitwright checks every file first (file, line, key and a hint for each problem; nothing is
    written when one has an error), writes only what changed, reloads the manager at most once
    and restarts only the units whose generated unit changed. A run that changes nothing writes
    nothing, does not reload and reports C(changed=false).
  - The module never builds Quadlet files from strings; the files are given whole, by
    I(files) (contents, e.g. from C(lookup('file', ...)) or C(template)) or by I(src) (a path on
    the managed host).
options:
  app:
    description:
      - The app's name; the files installed by this task belong to it.
    type: str
    required: true
  state:
    description:
      - C(present) applies the files; C(absent) stops the app's units and removes its files.
    type: str
    default: present
    choices: [present, absent]
  files:
    description:
      - File name (such as C(web.container) or C(web.container.d/10-env.conf)) to contents.
      - Mutually exclusive with I(src).
    type: dict
  src:
    description:
      - A Quadlet file, a directory (the app's files and C(NAME.d/*.conf) drop-ins) or a podman
        C(.quadlets) file on the managed host.
      - Mutually exclusive with I(files).
    type: path
  prune:
    description:
      - Remove files of the app that are no longer given.
    type: bool
    default: false
  now:
    description:
      - Start new units too (by default only units with an C([Install]) section are started).
    type: bool
    default: false
  settle:
    description:
      - Seconds the units the change started or restarted must stay up after their jobs. A unit
        that fails in that time (or is being restarted after a failure) fails the task, and the
        previous files are put back. C(0) does not wait.
    type: float
    default: 2
extends_documentation_fragment:
  - unitwright.systemd.common
attributes:
  check_mode:
    support: full
    description: C(quadlet apply --check) reports what would change and writes nothing.
  diff_mode:
    support: full
    description: The changed Quadlet files and the changed generated units, before and after.
author:
  - unitwright developers (@unitwright)
'''

EXAMPLES = r'''
- name: A web app from files next to the playbook
  unitwright.systemd.quadlet:
    app: web
    files:
      web.container: "{{ lookup('file', 'web/web.container') }}"
      web.network: "{{ lookup('file', 'web/web.network') }}"
    prune: true

- name: Rootless, from a directory already on the host
  unitwright.systemd.quadlet:
    app: sync
    src: /srv/apps/sync
    scope: user

- name: Remove it
  unitwright.systemd.quadlet:
    app: web
    state: absent
'''

RETURN = r'''
report:
  description:
    - unitwright's report (C(changed), C(reloaded), C(files), C(units), C(diagnostics),
      C(rolled_back)); see docs/json.md of unitwright.
  returned: when unitwright ran
  type: dict
diff:
  description: Before and after of each changed file and generated unit (with C(--diff)).
  returned: in diff mode, when something changed
  type: list
  elements: dict
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.unitwright.systemd.plugins.module_utils.unitwright import (
    COMMON_ARGS, json_value, run)


def stage(module, files, app):
    """Writes ``files`` into a new directory named after the app; returns (tmp, app dir)."""
    tmp = tempfile.mkdtemp(prefix='unitwright-quadlet-')
    os.chmod(tmp, 0o700)
    root = os.path.join(tmp, app)
    os.mkdir(root)
    for name, content in files.items():
        parts = name.split('/')
        if not name or name.startswith('/') or '..' in parts or '' in parts:
            shutil.rmtree(tmp, ignore_errors=True)
            module.fail_json(msg='files: %r is not a relative file name inside the app' % name)
        path = os.path.join(root, *parts)
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        with open(path, 'w') as f:
            f.write(content)
    return tmp, root


def present(module, result):
    p = module.params
    tmp = None
    src = p['src']
    if p['files'] is not None:
        tmp, src = stage(module, p['files'], p['app'])
    args = ['quadlet', 'apply', src, '--app', p['app'], '--json']
    if p['prune']:
        args.append('--prune')
    if p['now']:
        args.append('--now')
    args += ['--settle', str(p['settle'])]
    if module.check_mode:
        args.append('--check')
    if module._diff:
        args.append('--diff')
    try:
        rc, out, err = run(module, args)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    report = json_value(module, out, 'quadlet apply')
    if report is None:
        module.fail_json(msg=err.strip() or 'quadlet apply printed nothing', rc=rc)
    diff = report.pop('diff', None)
    result.update(changed=bool(report.get('changed')), report=report)
    if diff:
        result['diff'] = diff
    if rc != 0:
        problems = ['%s:%s: %s' % (d.get('file'), d.get('line'), d.get('message'))
                    for d in report.get('diagnostics') or [] if d.get('severity') == 'error']
        module.fail_json(msg='; '.join(problems) or err.strip(), rc=rc, **result)
    module.exit_json(**result)


def absent(module, result):
    p = module.params
    rc, out, err = run(module, ['quadlet', 'list', '--json'])
    if rc != 0:
        module.fail_json(msg='quadlet list failed: %s' % err.strip(), rc=rc)
    mine = [f for f in json_value(module, out, 'quadlet list') or [] if f.get('app') == p['app']]
    if not mine:
        module.exit_json(**result)
    result['changed'] = True
    if module._diff:
        result['diff'] = [dict(before_header=f.get('file'), after_header='(removed)',
                               before='(%s)\n' % f.get('file'), after='') for f in mine]
    if module.check_mode:
        module.exit_json(**result)
    rc, out, err = run(module, ['quadlet', 'rm', '--app', p['app'], '--json'])
    report = json_value(module, out, 'quadlet rm')
    result['report'] = report
    if rc != 0:
        module.fail_json(msg=err.strip(), rc=rc, **result)
    module.exit_json(**result)


def main():
    argument_spec = dict(
        app=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        files=dict(type='dict'),
        src=dict(type='path'),
        prune=dict(type='bool', default=False),
        now=dict(type='bool', default=False),
        settle=dict(type='float', default=2),
    )
    argument_spec.update(COMMON_ARGS)
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[['files', 'src']],
        required_if=[['state', 'present', ['files', 'src'], True]],
    )
    result = dict(changed=False)
    if module.params['state'] == 'present':
        present(module, result)
    else:
        absent(module, result)


if __name__ == '__main__':
    main()
