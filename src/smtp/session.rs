//! The inbound SMTP session as a state machine without I/O.
//!
//! Bytes go in, actions come out: replies to send, a transaction to process, a TLS handshake to
//! perform, a connection to close. The tokio layer only moves bytes, which keeps every protocol
//! decision here, testable and fuzzable without sockets. Command parsing is smtp-proto's; the
//! states, limits and replies are ours (RFC 5321, with RFC 2920 PIPELINING, RFC 3207 STARTTLS,
//! RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8 and RFC 2034 enhanced status codes).
//! The message after DATA is read by [`DataDecoder`]: only `<CRLF>.<CRLF>` ends it, so no
//! bare LF or CR inside a message can end it early and turn its rest into commands.

use smtp_proto::request::receiver::RequestReceiver;
use smtp_proto::{Error as ProtoError, Request};

use crate::gateway::Transaction;
use crate::smtp::data::DataDecoder;

/// Limits and capabilities of a session.
#[derive(Clone)]
pub struct SessionConfig {
    /// Our host name, in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message accepted (SIZE), in bytes.
    pub max_message_size: usize,
    /// Most recipients per transaction.
    pub max_recipients: usize,
    /// Whether STARTTLS is offered.
    pub starttls: bool,
    /// Most consecutive errors before the session is closed (RFC 5321 section 4.5.3.1.x spirit:
    /// a confused or hostile client is not served forever).
    pub max_errors: usize,
    /// Ask the I/O layer to check each recipient ([`Action::CheckRecipient`]) before
    /// accepting it.
    pub check_recipients: bool,
    /// Refuse MAIL until STARTTLS succeeded (RFC 3207 section 4: 530 5.7.0).
    pub require_tls: bool,
    /// Longest command line in bytes, line end included (`listen.max_command_line`).
    pub max_command_line: usize,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("hostname", &self.hostname)
            .field("max_message_size", &self.max_message_size)
            .field("max_recipients", &self.max_recipients)
            .field("starttls", &self.starttls)
            .field("max_errors", &self.max_errors)
            .field("check_recipients", &self.check_recipients)
            .field("require_tls", &self.require_tls)
            .field("max_command_line", &self.max_command_line)
            .finish()
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            hostname: "smimegw".into(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            starttls: false,
            max_errors: 20,
            check_recipients: false,
            require_tls: false,
            max_command_line: MAX_COMMAND_LINE,
        }
    }
}

/// What the I/O layer must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Process this transaction, then call [`Session::transaction_done`] with the reply.
    Process(Transaction),
    /// Check this recipient of this sender, then call [`Session::recipient_checked`] with the
    /// refusal, if any. Input that arrives meanwhile waits.
    CheckRecipient {
        /// MAIL FROM.
        sender: String,
        /// The recipient asked for.
        recipient: String,
    },
    /// Perform the server TLS handshake now, then call [`Session::tls_established`].
    StartTls,
    /// Close the connection (after sending anything queued before).
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before EHLO/HELO.
    Connected,
    /// Greeted, no transaction.
    Ready,
    /// MAIL accepted.
    Mail,
    /// At least one RCPT accepted.
    Rcpt,
    /// Receiving the message after DATA.
    Data,
    /// Waiting for the processing of a transaction.
    Processing,
    /// Waiting for the check of a recipient ([`Action::CheckRecipient`]).
    CheckingRecipient,
    /// Closed.
    Closed,
}

/// One SMTP session.
pub struct Session {
    config: SessionConfig,
    state: State,
    requests: RequestReceiver,
    data: Option<DataDecoder>,
    /// Bytes received while a transaction was being processed (pipelined commands after the
    /// message): they are handled once the reply is known.
    pending: Vec<u8>,
    /// The recipient being checked (state `CheckingRecipient`).
    checking: Option<String>,
    helo: String,
    esmtp: bool,
    tls: bool,
    mail_from: String,
    rcpt_to: Vec<String>,
    message: Vec<u8>,
    message_too_big: bool,
    errors: usize,
    /// Skipping the rest of an over-long command line.
    discarding_line: bool,
    /// The command parser is waiting for the rest of a line.
    needs_more: bool,
}

pub use crate::limits::MAX_COMMAND_LINE;

/// A reply line set, built with the enhanced status code (RFC 3463).
pub fn reply(code: u16, enhanced: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let lines = if lines.is_empty() { vec![""] } else { lines };
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        // Reply texts quote addresses and reasons taken from messages and next hops: a stray
        // CR or other control character must not reach the client as part of a reply line.
        let l: String = l
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if enhanced.is_empty() {
            out.extend_from_slice(format!("{code}{sep}{l}\r\n").as_bytes());
        } else {
            out.extend_from_slice(format!("{code}{sep}{enhanced} {l}\r\n").as_bytes());
        }
    }
    out
}

impl Session {
    /// A new session; send [`Session::greeting`] first.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: State::Connected,
            requests: RequestReceiver::default(),
            data: None,
            pending: Vec::new(),
            checking: None,
            helo: String::new(),
            esmtp: false,
            tls: false,
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            message: Vec::new(),
            message_too_big: false,
            errors: 0,
            discarding_line: false,
            needs_more: false,
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Vec<u8> {
        reply(220, "", &format!("{} ESMTP smimegw", self.config.hostname))
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Bytes the session holds between calls (the partial command line and the message being
    /// received), for the fuzz target's check that hostile input cannot grow it without bound.
    pub fn buffered(&mut self) -> usize {
        self.requests.buf().len() + self.message.len()
    }

    /// Whether the session is inside DATA (the I/O layer applies the longer DATA timeout).
    pub fn in_data(&self) -> bool {
        self.state == State::Data
    }

    fn reset_transaction(&mut self) {
        self.mail_from.clear();
        self.rcpt_to.clear();
        self.message.clear();
        self.message_too_big = false;
    }

    /// Feeds received bytes; returns what to do, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.waiting() {
            self.pending.extend_from_slice(bytes);
            return actions;
        }
        let mut iter = bytes.iter();
        while self.state != State::Closed && !self.waiting() {
            if iter.as_slice().is_empty() {
                break;
            }
            if self.state == State::Data {
                let data = self.data.get_or_insert_with(DataDecoder::new);
                let before = self.message.len();
                let rest = iter.as_slice();
                let end = data.feed(rest, &mut self.message);
                iter = rest[end.unwrap_or(rest.len())..].iter();
                let done = end.is_some();
                if self.message.len() > self.config.max_message_size {
                    // Keep reading to the end of DATA, but stop storing (no unbounded memory).
                    self.message_too_big = true;
                    self.message
                        .truncate(before.min(self.config.max_message_size));
                }
                if done {
                    self.data = None;
                    if self.message_too_big {
                        actions.push(Action::Send(reply(
                            552,
                            "5.3.4",
                            &format!(
                                "message exceeds the size limit of {} bytes",
                                self.config.max_message_size
                            ),
                        )));
                        self.reset_transaction();
                        self.state = State::Ready;
                    } else {
                        self.state = State::Processing;
                        actions.push(Action::Process(Transaction {
                            mail_from: std::mem::take(&mut self.mail_from),
                            rcpt_to: std::mem::take(&mut self.rcpt_to),
                            message: std::mem::take(&mut self.message),
                            helo: self.helo.clone(),
                        }));
                        self.pending.extend_from_slice(iter.as_slice());
                        return actions;
                    }
                }
                continue;
            }
            // Bound the command line before the parser sees it.
            let rest = iter.as_slice();
            let newline = rest.iter().position(|&b| b == b'\n');
            if self.discarding_line {
                match newline {
                    Some(n) => {
                        iter = rest[n + 1..].iter();
                        self.discarding_line = false;
                        continue;
                    }
                    None => break,
                }
            }
            let buffered = self.requests.buf().len();
            let limit = self.config.max_command_line;
            let too_long = match newline {
                Some(n) => buffered + n + 1 > limit,
                None => buffered + rest.len() > limit,
            };
            if too_long {
                self.requests = RequestReceiver::default();
                self.errors += 1;
                actions.push(Action::Send(reply(
                    500,
                    "5.5.2",
                    &format!("line too long (more than {limit} bytes)"),
                )));
                match newline {
                    Some(n) => iter = rest[n + 1..].iter(),
                    None => self.discarding_line = true,
                }
            } else {
                self.request(&mut iter, &mut actions);
                if self.waiting() {
                    // Pipelined commands wait for the recipient check.
                    self.pending.extend_from_slice(iter.as_slice());
                    return actions;
                }
                if actions.last() == Some(&Action::StartTls) {
                    // RFC 3207 section 4.2 / CVE-2011-0411: anything pipelined after
                    // STARTTLS arrived in clear text and must be discarded.
                    return actions;
                }
            }
            if self.errors >= self.config.max_errors && self.state != State::Closed {
                actions.push(Action::Send(reply(
                    421,
                    "4.7.0",
                    "too many errors, closing",
                )));
                actions.push(Action::Close);
                self.state = State::Closed;
            }
            if self.discarding_line || self.needs_more {
                self.needs_more = false;
                break;
            }
        }
        actions
    }

    /// Parses and executes one command from `iter`, if a whole one is there.
    fn request(&mut self, iter: &mut std::slice::Iter<'_, u8>, actions: &mut Vec<Action>) {
        let parsed = self.requests.ingest(iter).map(Request::into_owned);
        match parsed {
            Ok(req) => self.command(req, actions),
            Err(ProtoError::NeedsMoreData { .. }) => self.needs_more = true,
            Err(e) => self.protocol_error(e, actions),
        }
    }

    /// Reports the outcome of a processed transaction; returns the reply to send and the actions
    /// for any pipelined commands that arrived meanwhile.
    pub fn transaction_done(&mut self, code: u16, enhanced: &str, text: &str) -> Vec<Action> {
        let mut actions = vec![Action::Send(reply(code, enhanced, text))];
        self.reset_transaction();
        self.state = State::Ready;
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            actions.extend(self.feed(&pending));
        }
        actions
    }

    /// Reports the check of the recipient asked for in [`Action::CheckRecipient`]: `None`
    /// accepts it, a reply refuses it. Returns the reply to send and the actions for any
    /// pipelined commands that arrived meanwhile.
    pub fn recipient_checked(&mut self, refused: Option<crate::smtp::reply::Reply>) -> Vec<Action> {
        let Some(recipient) = self.checking.take() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        match refused {
            None => {
                self.rcpt_to.push(recipient);
                self.state = State::Rcpt;
                actions.push(Action::Send(reply(250, "2.1.5", "recipient ok")));
            }
            Some(r) => {
                self.state = if self.rcpt_to.is_empty() {
                    State::Mail
                } else {
                    State::Rcpt
                };
                actions.push(Action::Send(r.to_bytes()));
            }
        }
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            actions.extend(self.feed(&pending));
        }
        actions
    }

    fn waiting(&self) -> bool {
        matches!(self.state, State::Processing | State::CheckingRecipient)
    }

    /// Called once the TLS handshake succeeded: the session starts over (RFC 3207 section 4.2).
    pub fn tls_established(&mut self) {
        self.tls = true;
        self.state = State::Connected;
        self.helo.clear();
        self.esmtp = false;
        self.requests = RequestReceiver::default();
        self.reset_transaction();
    }

    fn protocol_error(&mut self, e: ProtoError, actions: &mut Vec<Action>) {
        self.errors += 1;
        let r = match e {
            ProtoError::UnknownCommand => reply(500, "5.5.1", "command unrecognized"),
            ProtoError::InvalidSenderAddress => reply(501, "5.1.7", "bad sender address syntax"),
            ProtoError::InvalidRecipientAddress => {
                reply(501, "5.1.3", "bad recipient address syntax")
            }
            ProtoError::SyntaxError { syntax } => {
                reply(501, "5.5.4", &format!("syntax error, expected: {syntax}"))
            }
            ProtoError::InvalidParameter { param } => {
                reply(501, "5.5.4", &format!("invalid parameter {param}"))
            }
            ProtoError::UnsupportedParameter { param } => {
                reply(504, "5.5.4", &format!("unsupported parameter {param}"))
            }
            ProtoError::ResponseTooLong => reply(500, "5.5.2", "line too long"),
            _ => reply(500, "5.5.2", "syntax error"),
        };
        actions.push(Action::Send(r));
    }

    fn ehlo_reply(&self) -> Vec<u8> {
        let mut lines = vec![format!("{} greets {}", self.config.hostname, self.helo)];
        lines.push("PIPELINING".into());
        lines.push(format!("SIZE {}", self.config.max_message_size));
        lines.push("8BITMIME".into());
        lines.push("SMTPUTF8".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        reply(250, "", &lines.join("\n"))
    }

    fn command(&mut self, req: Request<String>, actions: &mut Vec<Action>) {
        let send = |actions: &mut Vec<Action>, r: Vec<u8>| actions.push(Action::Send(r));
        match req {
            Request::Ehlo { host } | Request::Lhlo { host } => {
                self.helo = host;
                self.esmtp = true;
                self.reset_transaction();
                self.state = State::Ready;
                send(actions, self.ehlo_reply());
            }
            Request::Helo { host } => {
                self.helo = host;
                self.esmtp = false;
                self.reset_transaction();
                self.state = State::Ready;
                send(
                    actions,
                    reply(250, "", &format!("{} greets you", self.config.hostname)),
                );
            }
            Request::StartTls => {
                if !self.config.starttls {
                    self.errors += 1;
                    send(actions, reply(502, "5.5.1", "STARTTLS not available"));
                } else if self.tls {
                    self.errors += 1;
                    send(actions, reply(503, "5.5.1", "TLS already active"));
                } else if matches!(self.state, State::Mail | State::Rcpt) {
                    self.errors += 1;
                    send(
                        actions,
                        reply(503, "5.5.1", "STARTTLS not allowed inside a transaction"),
                    );
                } else {
                    send(actions, reply(220, "2.0.0", "ready to start TLS"));
                    actions.push(Action::StartTls);
                }
            }
            Request::Mail { from } => match self.state {
                State::Connected => {
                    self.errors += 1;
                    send(actions, reply(503, "5.5.1", "send EHLO first"));
                }
                State::Mail | State::Rcpt => {
                    self.errors += 1;
                    send(actions, reply(503, "5.5.1", "nested MAIL command"));
                }
                _ if self.config.require_tls && !self.tls => {
                    self.errors += 1;
                    send(
                        actions,
                        reply(530, "5.7.0", "must issue a STARTTLS command first"),
                    );
                }
                _ => {
                    if from.size > self.config.max_message_size {
                        self.errors += 1;
                        send(
                            actions,
                            reply(
                                552,
                                "5.3.4",
                                &format!(
                                    "message size {} exceeds the limit of {} bytes",
                                    from.size, self.config.max_message_size
                                ),
                            ),
                        );
                    } else {
                        self.reset_transaction();
                        self.mail_from = from.address;
                        self.state = State::Mail;
                        send(actions, reply(250, "2.1.0", "sender ok"));
                    }
                }
            },
            Request::Rcpt { to } => match self.state {
                State::Mail | State::Rcpt => {
                    if self.rcpt_to.len() >= self.config.max_recipients {
                        self.errors += 1;
                        send(
                            actions,
                            reply(
                                452,
                                "4.5.3",
                                "too many recipients, send the rest in another transaction",
                            ),
                        );
                    } else if to.address.is_empty() {
                        self.errors += 1;
                        send(actions, reply(501, "5.1.3", "empty recipient"));
                    } else if self.config.check_recipients {
                        self.checking = Some(to.address.clone());
                        self.state = State::CheckingRecipient;
                        actions.push(Action::CheckRecipient {
                            sender: self.mail_from.clone(),
                            recipient: to.address,
                        });
                    } else {
                        self.rcpt_to.push(to.address);
                        self.state = State::Rcpt;
                        send(actions, reply(250, "2.1.5", "recipient ok"));
                    }
                }
                _ => {
                    self.errors += 1;
                    send(actions, reply(503, "5.5.1", "need MAIL before RCPT"));
                }
            },
            Request::Data => match self.state {
                State::Rcpt => {
                    self.state = State::Data;
                    self.data = Some(DataDecoder::new());
                    send(actions, reply(354, "", "end data with <CR><LF>.<CR><LF>"));
                }
                _ => {
                    self.errors += 1;
                    send(actions, reply(503, "5.5.1", "need RCPT before DATA"));
                }
            },
            Request::Bdat { .. } => {
                self.errors += 1;
                send(actions, reply(502, "5.5.1", "CHUNKING not offered"));
            }
            Request::Rset => {
                self.reset_transaction();
                if self.state != State::Connected {
                    self.state = State::Ready;
                }
                send(actions, reply(250, "2.0.0", "ok"));
            }
            Request::Noop { .. } => send(actions, reply(250, "2.0.0", "ok")),
            Request::Quit => {
                send(actions, reply(221, "2.0.0", "bye"));
                actions.push(Action::Close);
                self.state = State::Closed;
            }
            Request::Vrfy { .. } | Request::Expn { .. } => send(
                actions,
                reply(252, "2.1.5", "cannot verify, but will relay"),
            ),
            Request::Help { .. } => send(actions, reply(214, "2.0.0", "see RFC 5321")),
            Request::Auth { .. } => {
                self.errors += 1;
                send(
                    actions,
                    reply(
                        502,
                        "5.5.1",
                        "AUTH not offered: access is by client address",
                    ),
                );
            }
            _ => {
                self.errors += 1;
                send(actions, reply(502, "5.5.1", "command not implemented"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sends(actions: &[Action]) -> String {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect()
    }

    fn session() -> Session {
        Session::new(SessionConfig {
            max_message_size: 1000,
            max_recipients: 2,
            starttls: true,
            ..SessionConfig::default()
        })
    }

    #[test]
    fn pipelined_transaction() {
        let mut s = session();
        let a = s.feed(
            b"EHLO mta.test\r\nMAIL FROM:<a@acme.test> SIZE=100\r\nRCPT TO:<b@x.test>\r\nDATA\r\n",
        );
        let text = sends(&a);
        assert!(
            text.contains("250-PIPELINING")
                && text.contains("250-SIZE 1000")
                && text.contains("STARTTLS")
        );
        assert!(text.contains("2.1.0") && text.contains("2.1.5") && text.contains("354 "));
        let a = s.feed(b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n");
        let Action::Process(t) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(t.mail_from, "a@acme.test");
        assert_eq!(t.rcpt_to, ["b@x.test"]);
        assert_eq!(t.message, b"Subject: x\r\n\r\n.dot\r\nbody\r\n");
        // QUIT waits until the transaction has its reply.
        assert_eq!(a.len(), 1);
        let a = s.transaction_done(250, "2.0.0", "queued");
        assert_eq!(sends(&a), "250 2.0.0 queued\r\n221 2.0.0 bye\r\n");
        assert_eq!(a.last(), Some(&Action::Close));
    }

    /// With recipient checks, each RCPT waits for its answer; pipelined commands behind it
    /// wait too, and a refused recipient leaves the others.
    #[test]
    fn recipients_are_checked_one_at_a_time_and_pipelining_waits() {
        let mut s = Session::new(SessionConfig {
            check_recipients: true,
            ..SessionConfig::default()
        });
        let a = s.feed(
            b"EHLO mta.test\r\nMAIL FROM:<a@acme.test>\r\nRCPT TO:<no@x.test>\r\nRCPT TO:<yes@x.test>\r\nDATA\r\n",
        );
        assert_eq!(
            a.last(),
            Some(&Action::CheckRecipient {
                sender: "a@acme.test".into(),
                recipient: "no@x.test".into()
            })
        );
        assert!(!sends(&a).contains("354"), "DATA waits: {}", sends(&a));
        let refusal =
            crate::smtp::reply::Reply::recipient_refusal(&crate::gateway::Refusal::NoCertificate {
                recipients: vec!["no@x.test".into()],
            });
        let a = s.recipient_checked(Some(refusal));
        assert!(sends(&a).starts_with("550 5.7.1 encryption is required for no@x.test"));
        assert_eq!(
            a.last(),
            Some(&Action::CheckRecipient {
                sender: "a@acme.test".into(),
                recipient: "yes@x.test".into()
            })
        );
        let a = s.recipient_checked(None);
        assert_eq!(
            sends(&a),
            "250 2.1.5 recipient ok\r\n354 end data with <CR><LF>.<CR><LF>\r\n"
        );
        let a = s.feed(b"hi\r\n.\r\n");
        let Action::Process(t) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(t.rcpt_to, ["yes@x.test"]);
    }

    #[test]
    fn out_of_order_commands_and_limits() {
        let mut s = session();
        assert!(sends(&s.feed(b"MAIL FROM:<a@b.test>\r\n")).starts_with("503 5.5.1"));
        s.feed(b"EHLO x\r\n");
        assert!(sends(&s.feed(b"RCPT TO:<a@b.test>\r\n")).starts_with("503"));
        assert!(sends(&s.feed(b"DATA\r\n")).starts_with("503"));
        assert!(sends(&s.feed(b"MAIL FROM:<a@b.test> SIZE=5000\r\n")).starts_with("552 5.3.4"));
        s.feed(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<1@b.test>\r\nRCPT TO:<2@b.test>\r\n");
        assert!(sends(&s.feed(b"RCPT TO:<3@b.test>\r\n")).starts_with("452 4.5.3"));
        assert!(sends(&s.feed(b"FOO\r\n")).starts_with("500"));
        let long = format!("NOOP {}\r\n", "x".repeat(10_000));
        assert!(sends(&s.feed(long.as_bytes())).contains("500"));
        // Oversized DATA is read to the end but refused, and the session goes on.
        s.feed(b"DATA\r\n");
        let big = format!("{}\r\n.\r\n", "y".repeat(5000));
        assert!(sends(&s.feed(big.as_bytes())).starts_with("552 5.3.4"));
        assert!(sends(&s.feed(b"NOOP\r\n")).starts_with("250"));
    }

    #[test]
    fn starttls_discards_pipelined_commands() {
        let mut s = session();
        s.feed(b"EHLO x\r\n");
        let a = s.feed(b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n");
        assert_eq!(a.last(), Some(&Action::StartTls));
        assert!(
            !sends(&a).contains("2.1.0"),
            "the injected MAIL must not be answered"
        );
        s.tls_established();
        // After TLS the client must greet again, and STARTTLS is no longer offered.
        assert!(sends(&s.feed(b"MAIL FROM:<a@b.test>\r\n")).starts_with("503"));
        let t = sends(&s.feed(b"EHLO x\r\n"));
        assert!(!t.contains("STARTTLS"), "{t}");
    }

    #[test]
    fn command_line_limit_is_configurable_and_long_lines_count_as_errors() {
        let mut s = Session::new(SessionConfig {
            max_command_line: 600,
            max_errors: 3,
            ..SessionConfig::default()
        });
        let ok = format!("NOOP {}\r\n", "x".repeat(590));
        assert!(sends(&s.feed(ok.as_bytes())).starts_with("250"));
        let long = format!("NOOP {}\r\n", "x".repeat(600));
        let t = sends(&s.feed(long.as_bytes()));
        assert!(
            t.starts_with("500 5.5.2 line too long (more than 600"),
            "{t}"
        );
        // The same line split over two reads, without its end in the first.
        let first = s.feed(&long.as_bytes()[..300]);
        assert!(first.is_empty(), "{first:?}");
        assert!(sends(&s.feed(&long.as_bytes()[300..])).starts_with("500"));
        // Three errors: the third over-long line closes the session.
        let a = s.feed(long.as_bytes());
        assert!(sends(&a).contains("421 4.7.0"), "{a:?}");
        assert_eq!(a.last(), Some(&Action::Close));
        assert!(s.is_closed());
    }

    /// A session inside DATA for one recipient.
    fn in_data() -> Session {
        let mut s = session();
        let a = s.feed(b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n");
        assert!(sends(&a).ends_with("354 end data with <CR><LF>.<CR><LF>\r\n"));
        s
    }

    /// Feeds `bytes` in DATA, cut at `cut`; returns the message of the first transaction, if
    /// one ended, and every reply sent on the way (QUIT is pipelined after the data).
    fn data_cut(bytes: &[u8], cut: usize) -> (Option<Vec<u8>>, String) {
        let mut s = in_data();
        let mut actions = s.feed(&bytes[..cut]);
        actions.extend(s.feed(&bytes[cut..]));
        let message = actions.iter().find_map(|a| match a {
            Action::Process(t) => Some(t.message.clone()),
            _ => None,
        });
        if message.is_some() {
            actions.extend(s.transaction_done(250, "2.0.0", "queued"));
        }
        (message, sends(&actions))
    }

    /// A second path for SMTP smuggling: only <CRLF>.<CRLF> ends the data we receive (RFC 5321
    /// section 4.1.1.4). A bare LF or CR before or after the dot is content, and the commands
    /// after it stay inside the message, wherever the reads are cut.
    #[test]
    fn only_crlf_dot_crlf_ends_data() {
        let smuggled = "MAIL FROM:<ceo@acme.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\nforged\r\n";
        for variant in ["\n.\r\n", "\n.\n", "\r.\r\n", "\r\n.\r\r\n"] {
            for at_start in [false, true] {
                let head = if at_start { "" } else { "text" };
                let data = format!("{head}{variant}{smuggled}.\r\nQUIT\r\n");
                for cut in 0..=data.len() {
                    let (message, replies) = data_cut(data.as_bytes(), cut);
                    let message =
                        message.unwrap_or_else(|| panic!("{data:?} cut at {cut}: no end"));
                    let want = if variant.starts_with("\r\n") {
                        // A stuffed dot after CRLF is removed, the rest is content.
                        format!("{head}\r\n\r\r\n{smuggled}")
                    } else {
                        format!("{head}{variant}{smuggled}")
                    };
                    assert_eq!(
                        String::from_utf8_lossy(&message),
                        want,
                        "{data:?} cut at {cut}"
                    );
                    assert_eq!(
                        replies, "250 2.0.0 queued\r\n221 2.0.0 bye\r\n",
                        "{data:?} cut at {cut}: the smuggled commands were answered"
                    );
                }
            }
        }
    }

    /// The DATA command's own CRLF starts the first line: an empty message is ".<CRLF>" at once,
    /// and a first line that starts with a dot arrives stuffed.
    #[test]
    fn the_first_line_of_data_is_a_line() {
        for (data, want) in [
            (b".\r\nQUIT\r\n".as_slice(), b"".as_slice()),
            (b"..hidden\r\n.\r\nQUIT\r\n", b".hidden\r\n"),
        ] {
            for cut in 0..=data.len() {
                let (message, replies) = data_cut(data, cut);
                assert_eq!(message.as_deref(), Some(want), "{data:?} cut at {cut}");
                assert!(replies.ends_with("221 2.0.0 bye\r\n"), "{replies}");
            }
        }
    }

    #[test]
    fn too_many_errors_close_the_session() {
        let mut s = session();
        let mut closed = false;
        for _ in 0..30 {
            let a = s.feed(b"BOGUS\r\n");
            if a.contains(&Action::Close) {
                closed = true;
                break;
            }
        }
        assert!(closed && s.is_closed());
    }
}
