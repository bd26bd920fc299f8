//! S/MIME: messages to CMS and back (RFC 8551), starting with CMS enveloping.

pub mod enveloped;
