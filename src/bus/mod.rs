//! D-Bus client for org.freedesktop.systemd1.
