//! Local ports for integration tests of several crates, which include this file by path
//! (`#[path = ".../common/test-support/ports.rs"] mod ports;`): plain std, no runtime.
#![allow(dead_code)]

/// A port nothing listens on right now (bound and released: the caller binds it again at once,
/// for servers that cannot be told to bind port 0 and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}
