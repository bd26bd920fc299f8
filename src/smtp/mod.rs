//! SMTP: the inbound session the MTA talks to, the relay to the next hop, and the message data
//! on the wire between them.

pub mod client_auth;
pub mod data;
pub mod ratelimit;
pub mod relay;
pub mod reply;
pub mod server;
pub mod session;
