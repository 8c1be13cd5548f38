//! Ask every replica, keep the first answer: the senders of the other answers block forever.
//!
//! The async version of `blocked_senders`. A client sends a question to four replicas, each
//! answering on a shared tokio `mpsc` channel of capacity 1, and reads one answer. One more answer
//! fits in the channel; the last two replicas wait for room that never comes, for as long as the
//! client lives. Nothing fails and nothing is logged: the tasks simply pile up, query after
//! query. (With three replicas, as in the thread version, only one would block: the channel's
//! one slot holds the second answer.)
//!
//! The sends are wrapped in `leakcheck::waiting("chan send", ..)`, so the report says what the
//! survivors wait on and where; without it they show as `idle`, which is just as true but says
//! less.
//!
//! Run it with `cargo run --example async_blocked_senders`.

use std::time::Duration;

use leakcheck::Options;
use tokio::sync::mpsc;

const REPLICAS: usize = 4;

/// A client of a replicated service, with one channel for the answers to all its queries.
struct Client {
    answers_tx: mpsc::Sender<String>,
    answers: mpsc::Receiver<String>,
}

impl Client {
    fn new() -> Client {
        let (answers_tx, answers) = mpsc::channel(1);
        Client {
            answers_tx,
            answers,
        }
    }

    /// Asks every replica and returns the first answer: "first response wins".
    async fn query(&mut self, question: &'static str) -> String {
        for replica in 1..=REPLICAS {
            let answers = self.answers_tx.clone();
            leakcheck::tokio::spawn_named(format!("replica-{replica}"), async move {
                let answer = format!("{question} -> answer from replica {replica}");
                // The bug: only the first answer is ever read.
                let _ = leakcheck::waiting("chan send", answers.send(answer)).await;
            });
        }
        self.answers
            .recv()
            .await
            .expect("the client holds a sender, so the channel is open")
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let check = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(500)));

    let mut client = Client::new();
    let answer = runtime.block_on(client.query("what time is it?"));
    println!("got: {answer}\n");

    // The client is still alive, as it would be in a real program: its replicas are stuck.
    match check.verify() {
        Ok(()) => println!("no leaks"),
        Err(report) => println!("{report}"),
    }
    drop(client);
    runtime.shutdown_background();
}
