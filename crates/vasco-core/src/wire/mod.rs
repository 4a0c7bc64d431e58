//! The request and response bodies of each API dialect the registry speaks, converted to and
//! from the core's types in one place: [`native`] holds Vasco's own bodies (a registration, a
//! status update), and each other module maps one peer's model onto Vasco's (names, ids,
//! addresses, tags, metadata, weights, health) and documents what differs, so that every
//! dialect reads and writes the same registry.

pub mod consul;
pub mod dns;
pub mod lyft;
pub mod native;
