//! Validation: every value that parsed but makes no sense is refused, naming the file, the key,
//! the value and what would be accepted.

use super::*;

impl Config {
    pub(super) fn invalid(
        &self,
        key: &str,
        value: impl std::fmt::Display,
        expected: &str,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        self.validate_directory()?;
        if self.data_dir.is_none() {
            return Err(self.invalid(
                "data_dir",
                "(missing)",
                "set data_dir = \"/var/lib/smimegw\" in the file, or pass --data-dir / SMIMEGW_DATA_DIR",
            ));
        }
        if self.internal_domains.is_empty() {
            return Err(self.invalid(
                "internal_domains",
                "[]",
                "list the mail domains this gateway serves, e.g. internal_domains = [\"acme.test\"]",
            ));
        }
        let mut domains = Vec::with_capacity(self.internal_domains.len());
        for d in &self.internal_domains {
            let norm = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if norm.is_empty() || norm.contains('@') || norm.contains(' ') || !norm.contains('.') {
                return Err(self.invalid(
                    "internal_domains",
                    format!("\"{d}\""),
                    "a domain name such as \"acme.test\" (no @, no spaces)",
                ));
            }
            domains.push(norm);
        }
        self.internal_domains = domains;
        for (k, v) in [
            ("ca.days", self.ca.days),
            ("ca.user_days", self.ca.user_days),
            ("ca.crl_days", self.ca.crl_days),
        ] {
            if v == 0 {
                return Err(self.invalid(k, v, "a number of days greater than 0"));
            }
        }
        if self.ca.renew_before_days >= self.ca.user_days {
            return Err(self.invalid(
                "ca.renew_before_days",
                self.ca.renew_before_days,
                "fewer days than ca.user_days (a renewed certificate would be due again at once); 0 turns automatic renewal off",
            ));
        }
        if self.ca.name.trim().is_empty() {
            return Err(self.invalid("ca.name", "\"\"", "a non-empty CA name"));
        }
        self.validate_listener("listen", &self.listen)?;
        if let Some(sub) = &self.submission {
            self.validate_listener("submission", sub)?;
            if sub.address == self.listen.address {
                return Err(self.invalid(
                    "submission.address",
                    format!("\"{}\"", sub.address),
                    "an address other than listen.address: the submission listener signs, the inbound one never does (e.g. address = \"127.0.0.1:10027\")",
                ));
            }
            if self.metrics.enabled && self.metrics.listen == sub.address {
                return Err(self.invalid(
                    "metrics.listen",
                    format!("\"{}\"", self.metrics.listen),
                    "an address other than submission.address, or enabled = false under [metrics]",
                ));
            }
        }
        if self.metrics.enabled && self.metrics.listen == self.listen.address {
            return Err(self.invalid(
                "metrics.listen",
                format!("\"{}\"", self.metrics.listen),
                "an address other than listen.address (default \"127.0.0.1:9925\"), or enabled = false under [metrics]",
            ));
        }
        self.validate_limits()?;
        self.validate_notify()?;
        if !self.relay.next_hop.contains(':') {
            return Err(self.invalid(
                "relay.next_hop",
                format!("\"{}\"", self.relay.next_hop),
                "host:port, e.g. \"127.0.0.1:10026\"",
            ));
        }
        if self.relay.timeout_secs == 0 || self.relay.timeout_secs > 3600 {
            return Err(self.invalid(
                "relay.timeout_secs",
                self.relay.timeout_secs,
                "a number of seconds from 1 to 3600 (default 60)",
            ));
        }
        if self.relay.idle_connections > 1000 {
            return Err(self.invalid(
                "relay.idle_connections",
                self.relay.idle_connections,
                "a number from 0 to 1000 (default 8), below the next hop's process limit (maxproc of the re-injection smtpd in master.cf)",
            ));
        }
        if self.relay.idle_secs == 0 || self.relay.idle_secs > 300 {
            return Err(self.invalid(
                "relay.idle_secs",
                self.relay.idle_secs,
                "a number of seconds from 1 to 300 (default 5), below the next hop's idle timeout (Postfix smtpd_timeout)",
            ));
        }
        for addr in self.policy.users.keys() {
            if !addr.contains('@') {
                return Err(self.invalid(
                    &format!("policy.users.\"{addr}\""),
                    addr,
                    "an e-mail address",
                ));
            }
        }
        Ok(())
    }

    pub(super) fn validate_directory(&self) -> Result<(), ConfigError> {
        let Some(d) = &self.directory else {
            return Ok(());
        };
        if !(d.url.starts_with("postgres://") || d.url.starts_with("postgresql://")) {
            return Err(self.invalid(
                "directory.url",
                &d.url,
                "a PostgreSQL URL, postgres://user@host:port/dbname (remove [directory] to use the embedded store in data_dir)",
            ));
        }
        if let Some(rest) = d.url.split_once("://").map(|(_, r)| r)
            && let Some((userinfo, _)) = rest.split_once('@')
            && userinfo.contains(':')
        {
            return Err(self.invalid(
                "directory.url",
                "(a URL with a password)",
                "the URL without its password: the URL appears in logs; put the password in a file and name it with directory.password_file",
            ));
        }
        if d.pool_size == 0 || d.pool_size > 1024 {
            return Err(self.invalid(
                "directory.pool_size",
                d.pool_size,
                "a number from 1 to 1024 (default 16)",
            ));
        }
        if d.timeout_secs == 0 || d.timeout_secs > 300 {
            return Err(self.invalid(
                "directory.timeout_secs",
                d.timeout_secs,
                "a number from 1 to 300 (default 5)",
            ));
        }
        Ok(())
    }

    /// The checks of one listener table (`[listen]` or `[submission]`), naming its keys.
    pub(super) fn validate_listener(
        &self,
        table: &str,
        l: &ListenConfig,
    ) -> Result<(), ConfigError> {
        if l.max_message_size < 1024 {
            return Err(self.invalid(
                &format!("{table}.max_message_size"),
                l.max_message_size,
                "a size in bytes of at least 1024",
            ));
        }
        for (k, v) in [
            ("max_recipients", l.max_recipients as u64),
            ("max_sessions", l.max_sessions as u64),
            ("command_timeout_secs", l.command_timeout_secs),
            ("data_timeout_secs", l.data_timeout_secs),
        ] {
            if v == 0 {
                return Err(self.invalid(&format!("{table}.{k}"), v, "a number greater than 0"));
            }
        }
        if !(512..=65536).contains(&l.max_command_line) {
            return Err(self.invalid(
                &format!("{table}.max_command_line"),
                l.max_command_line,
                "a number of bytes from 512 (RFC 5321's minimum) to 65536 (default 2048)",
            ));
        }
        if l.require_client_certificate && l.tls_cert.is_none() {
            return Err(self.invalid(
                &format!("{table}.require_client_certificate"),
                "true",
                &format!("set {table}.tls_cert and {table}.tls_key too (clients authenticate inside STARTTLS)"),
            ));
        }
        if l.tls_cert.is_some() != l.tls_key.is_some() {
            return Err(self.invalid(
                &format!("{table}.tls_cert / {table}.tls_key"),
                "only one of them set",
                "set both (a PEM certificate chain and its PEM key) or neither",
            ));
        }
        Ok(())
    }

    /// `[notify]`: addresses without white space or control characters (they go into the
    /// envelope and the header), the sender in an internal domain (our CA issues its
    /// certificate), days from 1 to 3650, largest first.
    pub(super) fn validate_notify(&mut self) -> Result<(), ConfigError> {
        let address = |a: &str| {
            let a = a.trim().to_ascii_lowercase();
            let ok = a.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.contains('@') && !d.ends_with('.')
            }) && !a
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"\\()[]".contains(c));
            ok.then_some(a)
        };
        let from = match &self.notify.from {
            Some(f) => address(f).ok_or_else(|| {
                self.invalid(
                    "notify.from",
                    format!("{f:?}"),
                    "an e-mail address such as \"postmaster@acme.test\"",
                )
            })?,
            None => format!("postmaster@{}", self.internal_domains[0]),
        };
        if !self.is_internal(&from) {
            return Err(self.invalid(
                "notify.from",
                format!("\"{from}\""),
                &format!(
                    "an address in an internal domain ({}): the gateway signs notices with a certificate its CA issues for it",
                    self.internal_domains.join(", ")
                ),
            ));
        }
        self.notify.from = Some(from);
        let mut admins = Vec::with_capacity(self.notify.admins.len());
        for a in &self.notify.admins {
            admins.push(address(a).ok_or_else(|| {
                self.invalid(
                    "notify.admins",
                    format!("{a:?}"),
                    "a list of e-mail addresses such as [\"hostmaster@acme.test\"]",
                )
            })?);
        }
        self.notify.admins = admins;
        if self.notify.days.is_empty() {
            return Err(self.invalid(
                "notify.days",
                "[]",
                "at least one number of days, e.g. [30, 7, 1] (the default)",
            ));
        }
        if let Some(d) = self.notify.days.iter().find(|d| !(1..=3650).contains(*d)) {
            return Err(self.invalid(
                "notify.days",
                d,
                "numbers of days from 1 to 3650, e.g. [30, 7, 1] (the default)",
            ));
        }
        self.notify.days.sort_unstable_by(|a, b| b.cmp(a));
        self.notify.days.dedup();
        Ok(())
    }

    pub(super) fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, value, lo, hi, default) in [
            (
                "limits.max_mime_depth",
                l.max_mime_depth as u64,
                4,
                1000,
                "32",
            ),
            (
                "limits.max_headers",
                l.max_headers as u64,
                50,
                100_000,
                "1000",
            ),
            (
                "limits.max_parts",
                l.max_parts as u64,
                10,
                1_000_000,
                "10000",
            ),
            (
                "limits.max_header_size",
                l.max_header_size as u64,
                1000,
                16 * 1024 * 1024,
                "102400",
            ),
            ("limits.max_cms_layers", l.max_cms_layers as u64, 1, 16, "4"),
            (
                "revocation.timeout_secs",
                self.revocation.timeout_secs,
                1,
                60,
                "3",
            ),
            (
                "limits.max_processing_secs",
                l.max_processing_secs,
                1,
                3600,
                "120",
            ),
        ] {
            if !(lo..=hi).contains(&value) {
                return Err(self.invalid(
                    key,
                    value,
                    &format!("a number from {lo} to {hi} (default {default})"),
                ));
            }
        }
        Ok(())
    }
}
