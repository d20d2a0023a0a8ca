//! The peer benchmark (being written).
fn main() {}
