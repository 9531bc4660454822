//! Helpers of the client's integration tests.
pub mod netns;
pub mod process;
pub mod web;
