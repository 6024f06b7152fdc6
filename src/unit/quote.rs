//! Quoting of values for each unit-file context (exec argument, Environment=, plain setting).
