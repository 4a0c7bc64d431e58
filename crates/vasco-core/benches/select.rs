//! Selection benchmark (being written).
fn main() {}
