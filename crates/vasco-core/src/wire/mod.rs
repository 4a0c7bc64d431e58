//! Request and response bodies of each API dialect, converted to and from the core's types in
//! one place, so that every dialect reads and writes the same registry.

pub mod lyft;
