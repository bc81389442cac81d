//! `--json`: one JSON object a line on stdout for every event, each with the schema version
//! (`docs/json.md`).

use std::io::Write;

use serde::Serialize;

use super::{Event, Reporter};

/// Raised when a field is removed or changes meaning; adding fields or events keeps it.
pub const SCHEMA: u32 = 1;

pub struct JsonLines<W: Write> {
    out: W,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        JsonLines { out }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    schema: u32,
    #[serde(flatten)]
    event: &'a Event,
}

impl<W: Write> Reporter for JsonLines<W> {
    fn flush(&mut self) {
        let _ = self.out.flush();
    }

    fn report(&mut self, event: &Event) {
        if matches!(event, Event::Explanation { .. }) {
            return;
        }
        let line = Line {
            schema: SCHEMA,
            event,
        };
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(self.out, "{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_line_with_the_schema_and_its_kind_first() {
        let mut out = Vec::new();
        JsonLines::new(&mut out).report(&Event::Depmod {
            kernel: "K1".into(),
            command: vec!["/sbin/depmod".into(), "-a".into(), "K1".into()],
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"schema\":1,\"event\":\"depmod\",\"kernel\":\"K1\",\"command\":[\"/sbin/depmod\",\"-a\",\"K1\"]}\n"
        );
    }
}
