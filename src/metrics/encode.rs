//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines, then one
//! sample per line, label values escaped (backslash, double quote, line feed).

use std::fmt::Write as _;

/// The Content-Type a scraper expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Builds one exposition, family by family.
#[derive(Default, Debug)]
pub struct Encoder {
    out: String,
}

/// A metric family's type.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Only goes up (resets at restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations with `_bucket`, `_sum`, `_count`.
    Histogram,
}

impl Encoder {
    /// Starts a family: its help text and type.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// Go-style float formatting as Prometheus writes it (`+Inf`, integers without a fraction).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaped_labels() {
        let mut e = Encoder::default();
        e.family("smimegw_x_total", Kind::Counter, "Things.\nMore.");
        e.sample("smimegw_x_total", &[("a", "q\"b\\c\nd"), ("z", "1")], 3.0);
        e.sample("smimegw_y", &[], 0.25);
        e.sample("smimegw_y", &[("le", &format_value(f64::INFINITY))], -2.5);
        assert_eq!(
            e.finish(),
            "# HELP smimegw_x_total Things.\\nMore.\n# TYPE smimegw_x_total counter\n\
             smimegw_x_total{a=\"q\\\"b\\\\c\\nd\",z=\"1\"} 3\nsmimegw_y 0.25\nsmimegw_y{le=\"+Inf\"} -2.5\n"
        );
    }
}
