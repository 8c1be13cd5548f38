//! A router that drops the wakers of expired requests: their tasks can never run again.
//!
//! Requests wait for their response by id. A response wakes the request's task through the waker
//! the task left in the router. A clean-up pass expires requests that waited too long, and drops
//! their wakers without waking them: those tasks are neither done nor cancelled, and nothing can
//! ever poll them again. No error, no panic, no log line; their memory, and whatever they hold
//! (a connection, a lock guard, a permit) is gone for good.
//!
//! leakcheck sees that every waker of such a task was dropped while it was pending, and reports
//! it as `LOST`: a certain leak, not a slow task.
//!
//! Run it with `cargo run --example lost_waker`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use leakcheck::Options;

/// Routes responses to the requests that wait for them.
#[derive(Clone, Default)]
struct Router {
    inner: Arc<Mutex<Routes>>,
}

#[derive(Default)]
struct Routes {
    waiting: HashMap<u64, Waker>,
    responses: HashMap<u64, String>,
}

impl Router {
    /// Waits for the response to request `id`.
    fn response(&self, id: u64) -> Response {
        Response {
            router: self.clone(),
            id,
        }
    }

    /// Delivers the response to request `id` and wakes its task.
    fn deliver(&self, id: u64, body: &str) {
        let waker = {
            let mut routes = self.inner.lock().unwrap();
            routes.responses.insert(id, body.to_owned());
            routes.waiting.remove(&id)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Gives up on the requests still waiting. The bug: it drops their wakers instead of waking
    /// them with an error, so their tasks wait for a wake that cannot come.
    fn expire_all(&self) {
        self.inner.lock().unwrap().waiting.clear();
    }
}

struct Response {
    router: Router,
    id: u64,
}

impl Future for Response {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        let mut routes = self.router.inner.lock().unwrap();
        match routes.responses.remove(&self.id) {
            Some(body) => Poll::Ready(body),
            None => {
                routes.waiting.insert(self.id, cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let check = leakcheck::verify_none_with(Options::new().timeout(Duration::from_millis(300)));

    let router = Router::default();
    runtime.block_on(async {
        let requests: Vec<_> = (1..=3)
            .map(|id| {
                let response = router.response(id);
                leakcheck::tokio::spawn(async move {
                    let body = response.await;
                    println!("request {id}: {body}");
                })
            })
            .collect();
        // Let every request register its waker.
        tokio::time::sleep(Duration::from_millis(50)).await;
        router.deliver(1, "200 OK");
        router.expire_all();
        drop(requests);
    });

    match check.verify() {
        Ok(()) => println!("no leaks"),
        Err(report) => println!("{report}"),
    }
    runtime.shutdown_background();
}
