//! Template instances with per-instance settings.
