//! `runtime`: the composition root. Opens the devices, loads the XDP program, creates one
//! worker per queue id (each with one UMEM shared by its sockets on every port), starts the
//! control thread and handles signals.

pub mod testbed;
pub mod worker;

#[cfg(feature = "xdp")]
mod run;
#[cfg(feature = "xdp")]
pub use run::{run, RunOptions};
