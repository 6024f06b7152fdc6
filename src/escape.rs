//! systemd 252 unit-name escaping (see `systemd-escape`).
