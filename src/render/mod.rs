//! Rendering units from tera templates with unit-file-context escaping.
