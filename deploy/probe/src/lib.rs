//! `httvps-probe`: sends the same active probes to a deployment and to a reference nginx and
//! reports, per probe, whether the answers (every byte, the TLS close and the TCP close) are
//! identical. Only `Date` header values are normalized.

pub mod compare;
pub mod conn;
pub mod probes;
pub mod raw_hello;
pub mod report;
pub mod run;
pub mod tls;
pub mod transcript;
