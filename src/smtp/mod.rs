//! SMTP: the inbound session the MTA talks to, and the relay to the next hop.

pub mod client_auth;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod session;
