//! Helpers of the client's integration tests.
pub mod process;
pub mod web;
