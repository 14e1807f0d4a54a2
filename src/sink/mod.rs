//! Output sinks.
