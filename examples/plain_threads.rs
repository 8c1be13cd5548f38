//! A cache warmer that outlives its cache: a real leak, in code that knows nothing of leakcheck.
//!
//! `Cache::new` starts a background thread that refreshes entries on request, and ends when the
//! request channel closes, that is when every sender is dropped. Dropping the cache drops its
//! sender; but a clone was handed to a metrics hook that lives on, so the warmer waits for a
//! request forever, holding the cache's entries. Only `std::thread` and `std::sync` are used:
//! leakcheck sees the thread because it tracks every thread the process creates (Linux with
//! glibc), and says where it was spawned and what it waits on.
//!
//! Run it with `cargo run --example plain_threads`.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The code under test: a cache with a background warmer thread.
mod cache {
    use super::*;

    pub struct Cache {
        entries: Arc<Mutex<HashMap<String, String>>>,
        refresh: Sender<String>,
    }

    impl Cache {
        pub fn new() -> Cache {
            let entries = Arc::new(Mutex::new(HashMap::new()));
            let (refresh, requests) = channel::<String>();
            let shared = Arc::clone(&entries);
            std::thread::spawn(move || {
                // Ends when every sender is gone, which `metrics_hook` prevents.
                for key in requests {
                    let value = format!("fresh value of {key}");
                    shared.lock().unwrap().insert(key, value);
                }
            });
            Cache { entries, refresh }
        }

        pub fn get(&self, key: &str) -> Option<String> {
            let _ = self.refresh.send(key.to_owned());
            self.entries.lock().unwrap().get(key).cloned()
        }

        /// The bug: a sender handed out to live somewhere else, for as long as that lives.
        pub fn metrics_hook(&self) -> Sender<String> {
            self.refresh.clone()
        }
    }
}

fn main() {
    let check =
        leakcheck::verify_none_with(leakcheck::Options::new().timeout(Duration::from_millis(300)));
    let cache = cache::Cache::new();
    let metrics = cache.metrics_hook();
    let _ = cache.get("user:1");
    drop(cache);
    match check.verify() {
        Ok(()) => println!("no leaks"),
        Err(report) => println!("{report}"),
    }
    drop(metrics);
}
