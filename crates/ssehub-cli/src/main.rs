//! The ssehub binary (being written).
fn main() {}
