//! A logger that fires off a task per message: every task waits forever for an acknowledgement.
//!
//! Logging must never block the caller, so `Logger::log` hands each message to a task of its own
//! that queues it for the writer and waits for the writer to confirm the write (to count the
//! messages that were lost, say). The writer acknowledges when it flushes, and flushing was meant
//! to happen on a timer that nobody started. Every log line leaves a task behind, idle, holding its
//! message: in a server, the task count climbs with the traffic until the process falls over.
//!
//! The tasks are spawned with `leakcheck::tokio::spawn`, so the report has their spawn site and
//! state. Under `#[leak_test(tokio)]`, tasks spawned with plain `tokio::spawn` are caught as well.
//!
//! Run it with `cargo run --example log_task_per_message`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use leakcheck::Options;
use tokio::sync::oneshot;

/// A message waiting to be written, and whom to tell once it is.
struct Pending {
    line: String,
    written: oneshot::Sender<()>,
}

#[derive(Clone, Default)]
struct Logger {
    queue: Arc<Mutex<Vec<Pending>>>,
}

impl Logger {
    /// Logs a line without blocking: a task queues it and waits until it is written.
    fn log(&self, line: impl Into<String>) {
        let queue = Arc::clone(&self.queue);
        let line = line.into();
        leakcheck::tokio::spawn(async move {
            let (written, confirmation) = oneshot::channel();
            queue.lock().unwrap().push(Pending { line, written });
            // The bug: only `flush` confirms, and nothing calls it.
            let _ = confirmation.await;
        });
    }

    /// Writes the queued lines and confirms them. Meant to run every second on a timer.
    #[allow(dead_code)]
    fn flush(&self) {
        for pending in self.queue.lock().unwrap().drain(..) {
            println!("{}", pending.line);
            let _ = pending.written.send(());
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let check = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(300)));

    let logger = Logger::default();
    runtime.block_on(async {
        for request in 1..=5 {
            logger.log(format!("handled request {request}"));
        }
    });

    match check.verify() {
        Ok(()) => println!("no leaks"),
        Err(report) => println!("{report}"),
    }
    drop(logger);
    runtime.shutdown_background();
}
