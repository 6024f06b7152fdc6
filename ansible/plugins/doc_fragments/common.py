# -*- coding: utf-8 -*-
# Copyright: unitwright developers
# MIT or Apache-2.0 (see the repository's Cargo.toml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options every module of the collection has (module_utils/unitwright.py COMMON_ARGS)."""

    DOCUMENTATION = r'''
options:
  scope:
    description:
      - C(system) for the system manager, C(user) for the manager of the user the task runs as.
    type: str
    default: system
    choices: [system, user]
  executable:
    description:
      - The unitwright binary on the managed host (a name on the PATH or a path).
    type: str
    default: unitwright
notes:
  - Requires C(unitwright) on the managed host.
'''
