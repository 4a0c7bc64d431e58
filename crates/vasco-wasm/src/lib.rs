//! # vasco-wasm
//!
//! The npm package `vasco`: the Vasco registry client compiled to wasm (work in progress).

pub mod error;
pub mod transport;
