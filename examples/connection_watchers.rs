//! A connection pool whose every connection starts a health watcher that is never stopped.
//!
//! Closing the pool closes the connections, but each watcher loops on its heartbeat forever: in a
//! long-running server every reconnect adds a thread until the process falls over. leakcheck
//! reports one group (same spawn site, same state) with the count, instead of three raw stacks.
//!
//! Run it with `cargo run --example connection_watchers`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use leakcheck::{thread, Options};

const HEARTBEAT: Duration = Duration::from_millis(50);

struct Connection {
    id: usize,
    open: Arc<AtomicBool>,
}

impl Connection {
    fn connect(id: usize) -> Connection {
        let open = Arc::new(AtomicBool::new(true));
        let seen_open = Arc::clone(&open);
        thread::Builder::new()
            .name(format!("conn-{id}-health"))
            .spawn(move || loop {
                // The bug: the loop never looks at whether anyone still needs it.
                let _healthy = seen_open.load(Ordering::Relaxed);
                thread::sleep(HEARTBEAT);
            })
            .expect("spawn the health watcher");
        Connection { id, open }
    }

    fn close(self) {
        self.open.store(false, Ordering::Relaxed);
        println!("closed connection {}", self.id);
    }
}

struct Pool {
    connections: Vec<Connection>,
}

impl Pool {
    fn new(size: usize) -> Pool {
        Pool {
            connections: (1..=size).map(Connection::connect).collect(),
        }
    }

    fn close(self) {
        self.connections.into_iter().for_each(Connection::close);
    }
}

fn main() {
    let check = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(300)));
    let pool = Pool::new(3);
    pool.close();
    match check.verify() {
        Ok(()) => println!("no leaks"),
        Err(report) => println!("\n{report}"),
    }
}
