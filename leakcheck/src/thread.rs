//! Tracked threads: a drop-in for [`std::thread`].
//!
//! Replace `std::thread::spawn` with `leakcheck::thread::spawn` (or `use leakcheck::thread;`) and
//! every thread is recorded with its spawn site, its scope and its state. The handles are std's
//! own, so nothing else in the code changes. The rest of `std::thread` is re-exported, with
//! [`sleep`] instrumented to show up as `blocked in sleep`.
//!
//! ```
//! use leakcheck::thread;
//!
//! let guard = leakcheck::verify_none();
//! let worker = thread::spawn(|| 6 * 7);
//! assert_eq!(worker.join().unwrap(), 42);
//! guard.verify().expect("the worker was joined, nothing leaked");
//! ```

use std::io;
use std::panic::Location;
use std::time::Duration;

pub use std::thread::{
    available_parallelism, current, panicking, park, park_timeout, scope, yield_now, AccessError,
    JoinHandle, LocalKey, Result, Scope, ScopedJoinHandle, Thread, ThreadId,
};

use crate::blocking::blocking;
use crate::context;
use crate::os::ThreadHandle;
use crate::plain_threads;
use crate::registry::{ExitOnDrop, Shared, TaskRecord};
use crate::vocab::TaskKind;

/// Spawns a tracked thread, like [`std::thread::spawn`].
///
/// # Panics
///
/// Panics if the OS fails to create a thread, like std's; use [`Builder::spawn`] to handle that.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("failed to spawn thread")
}

/// Puts the current thread to sleep, like [`std::thread::sleep`], shown as `blocked in sleep`.
#[track_caller]
pub fn sleep(duration: Duration) {
    blocking("sleep", || std::thread::sleep(duration))
}

/// A tracked thread factory, like [`std::thread::Builder`].
///
/// ```
/// let handle = leakcheck::thread::Builder::new()
///     .name("worker".into())
///     .stack_size(256 * 1024)
///     .spawn(|| "done")
///     .unwrap();
/// assert_eq!(handle.join().unwrap(), "done");
/// ```
#[derive(Debug)]
#[must_use = "must eventually spawn the thread"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with no name and the default stack size.
    pub fn new() -> Builder {
        Builder {
            name: None,
            stack_size: None,
        }
    }

    /// Names the thread; the name shows in panic messages, the OS thread list and leak reports.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the size of the new thread's stack, in bytes.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    fn std_builder(&self) -> std::thread::Builder {
        let mut builder = std::thread::Builder::new();
        if let Some(name) = &self.name {
            builder = builder.name(name.clone());
        }
        if let Some(size) = self.stack_size {
            builder = builder.stack_size(size);
        }
        builder
    }

    /// Spawns the thread, like [`std::thread::Builder::spawn`].
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let record = self.register::<F>(Location::caller());
        let body = tracked_body(Shared::clone(&record), f);
        // Recorded already: the `pthread_create` interposer must not record it again.
        let _claim = plain_threads::claim_next_creation();
        self.std_builder()
            .spawn(body)
            .inspect_err(|_| record.exit())
    }

    /// Spawns a scoped thread, like [`std::thread::Builder::spawn_scoped`]. Scoped threads are
    /// joined by their scope, but one can still block that scope forever: it is tracked too.
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let record = self.register::<F>(Location::caller());
        let body = tracked_body(Shared::clone(&record), f);
        let _claim = plain_threads::claim_next_creation();
        self.std_builder()
            .spawn_scoped(scope, body)
            .inspect_err(|_| record.exit())
    }

    fn register<F>(&self, site: &'static Location<'static>) -> Shared<TaskRecord> {
        let name = self.name.as_deref().map(Box::from);
        context::register(TaskKind::Thread, name, site, std::any::type_name::<F>)
    }
}

/// Wraps a thread's closure so that the thread records its OS identity, makes its task and scope
/// current for everything it spawns, and leaves the registry when it ends, panicking or not.
fn tracked_body<F, T>(record: Shared<TaskRecord>, f: F) -> impl FnOnce() -> T
where
    F: FnOnce() -> T,
{
    move || {
        record.set_os_thread(ThreadHandle::current());
        let exit = ExitOnDrop(record);
        context::in_task(&exit.0, f)
    }
}
