//! Credentials: admin passwords (argon2) and sessions (JWT), and the random bearer tokens of
//! devices and gateways (stored only as SHA-256, compared in constant time).

pub mod jwt;
pub mod password;
pub mod seal;
pub mod token;
