//! ssehub-bench (placeholder, being written).
fn main() {}
