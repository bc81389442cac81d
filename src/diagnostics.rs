//! Where problems, warnings and notices go: `tracing` events, printed by one subscriber as
//! `weak-modules: <message>` lines on stderr (`weak-modules: warning: <message>` for warnings),
//! the form the bash tool's users and rpm logs know.

use std::io::Write;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the stderr printer for this process. Debug and trace events are not printed.
pub fn install() {
    let _ = tracing_subscriber::registry().with(StderrLines).try_init();
}

struct StderrLines;

impl<S: Subscriber> Layer<S> for StderrLines {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::INFO {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let line = line_for(level, &message.0);
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

fn line_for(level: Level, message: &str) -> String {
    if level == Level::WARN {
        format!("weak-modules: warning: {message}")
    } else {
        format!("weak-modules: {message}")
    }
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_say_so_and_the_rest_are_plain() {
        assert_eq!(line_for(Level::ERROR, "x: y"), "weak-modules: x: y");
        assert_eq!(line_for(Level::WARN, "x"), "weak-modules: warning: x");
        assert_eq!(line_for(Level::INFO, "waiting"), "weak-modules: waiting");
    }
}
