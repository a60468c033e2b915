//! runc-compatible logging: `--log FILE` with `--log-format text|json`.
//!
//! A JSON entry is `{"level":"error","msg":"…","time":"<RFC 3339>"}`, the
//! shape containerd's shim and conmon read back to report a runtime failure
//! (tracing-subscriber's stock JSON writes `"ERROR"` and `"message"`, which
//! they skip, so the lines are formatted here). Text entries follow logrus:
//! `time="…" level=error msg="…"`. This module owns the one process-wide
//! thing, the tracing subscriber; it starts no thread.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
    /// Entries go to a `--log` file (else to stderr).
    to_file: bool,
    json: bool,
    max: Level,
}

static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();

/// Installs the subscriber. Without `--log`, entries go to stderr.
pub fn init(log: Option<&Path>, json: bool, debug: bool) {
    let (out, to_file): (Box<dyn Write + Send>, bool) =
        match log.map(|p| (p, File::options().create(true).append(true).open(p))) {
            Some((_, Ok(f))) => (Box::new(f), true),
            Some((p, Err(e))) => {
                eprintln!("corral: cannot open log file {}: {e}", p.display());
                (Box::new(std::io::stderr()), false)
            }
            None => (Box::new(std::io::stderr()), false),
        };
    let max = if debug { Level::DEBUG } else { Level::WARN };
    let _ = SINK.set(Sink {
        out: Mutex::new(out),
        to_file,
        json,
        max,
    });
    let subscriber = tracing_subscriber::registry().with(RuncLayer);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Logs the error that ends the command (the same text goes to stderr).
/// Without `--log` it is not logged again: stderr already has it.
pub fn error(msg: &str) {
    if let Some(sink) = SINK.get().filter(|s| s.to_file) {
        write_entry(sink, Level::ERROR, msg);
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn write_entry(sink: &Sink, level: Level, msg: &str) {
    let time = corral_runtime::state::rfc3339(std::time::SystemTime::now());
    let line = if sink.json {
        let v = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
        format!("{v}\n")
    } else {
        format!("time={time:?} level={} msg={msg:?}\n", level_name(level))
    };
    if let Ok(mut out) = sink.out.lock() {
        let _ = out.write_all(line.as_bytes());
    }
}

struct RuncLayer;

#[derive(Default)]
struct Message {
    msg: String,
    fields: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.get() else { return };
        let level = *event.metadata().level();
        if level > sink.max {
            return;
        }
        let mut m = Message::default();
        event.record(&mut m);
        write_entry(sink, level, &format!("{}{}", m.msg, m.fields));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_lowercase_like_logrus() {
        assert_eq!(level_name(Level::ERROR), "error");
        assert_eq!(level_name(Level::WARN), "warning");
    }
}
