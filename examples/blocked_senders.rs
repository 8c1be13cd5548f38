//! Three senders on a rendezvous channel, one value read: two senders block forever.
//!
//! This is the leak goleak's documentation opens with, in Rust. A client asks three replicas
//! and keeps the first answer; the replies channel lives as long as the client, so the two
//! slower replicas wait forever to hand over answers nobody will read. Without leakcheck this is
//! invisible: the program (or test) ends and takes the blocked threads with it. With leakcheck,
//! the check at the end names the two survivors, where they were spawned, and where they are stuck.
//!
//! Run it with `cargo run --example blocked_senders`.

use std::time::Duration;

use leakcheck::sync::mpsc;
use leakcheck::{thread, Options};

/// A client that asks every replica and takes the first response.
struct Client {
    replies: mpsc::Receiver<String>,
    reply_to: mpsc::SyncSender<String>,
}

impl Client {
    fn new() -> Client {
        // A rendezvous channel: a send waits until somebody receives.
        let (reply_to, replies) = mpsc::sync_channel(0);
        Client { replies, reply_to }
    }

    /// Asks three replicas for an answer and keeps the first.
    fn first_response(&self, question: &str) -> String {
        for replica in 1..=3 {
            let reply_to = self.reply_to.clone();
            let question = question.to_owned();
            thread::Builder::new()
                .name(format!("replica-{replica}"))
                .spawn(move || {
                    let answer = format!("replica {replica} says 42 to {question:?}");
                    // The bug: only the first answer is ever received.
                    let _ = reply_to.send(answer);
                })
                .expect("spawn a replica");
        }
        self.replies.recv().expect("one replica answers")
    }
}

fn main() {
    let check = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(500)));
    let client = Client::new();
    println!("got: {}\n", client.first_response("the answer"));
    match check.verify() {
        Ok(()) => println!("no leaks"),
        Err(report) => println!("{report}"),
    }
    drop(client);
}
