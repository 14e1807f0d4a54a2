//! The `flowtide` command.
fn main() {}
