//! Which tasks of a leakcheck test runtime leakcheck knows, so that the others can be counted.
//!
//! A [`TestRuntime`] is the leakcheck side of the runtime `#[leak_test(tokio)]` builds. It keeps,
//! per tokio task id, the tasks leakcheck knows; the runtime's alive-task count less that is the
//! number of tasks nobody told leakcheck about.
//!
//! - On stable tokio, a task [`leakcheck::tokio::spawn`](super::spawn) spawns in the test's own
//!   scope is counted there for as long as it lives (`ClaimedRoot`); any other tracked future,
//!   including one spawned in a scope opened inside the test, *claims* the tokio task it runs in
//!   at its first poll (through the core's executor hooks), once per task between them. Until
//!   that poll, such a task is counted as unidentified, which a check waits out.
//! - With `--cfg tokio_unstable`, the runtime's hooks register every task at spawn (a task spawned
//!   by [`leakcheck::tokio::spawn`](super::spawn) is handed over as the tracked record it already
//!   has), make its record current while it is polled, and end it when it terminates.
//!
//! Every thread of the runtime (workers and blocking-pool threads) starts in the test's scope,
//! so what they spawn outside any task belongs to the test too, and is registered as part of the
//! harness, never reported as an untracked thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ::tokio::runtime::{Builder, Handle};

use super::runtime_threads::RuntimeThreads;
use crate::context::{self, ContextGuard};
use crate::registry::{Scope, ShardLock};
#[cfg(tokio_unstable)]
use crate::registry::{Shared, TaskRecord};

/// The leakcheck side of a test's tokio runtime.
pub(crate) struct TestRuntime {
    scope: Arc<Scope>,
    /// The runtime's tasks leakcheck knows, by tokio task id.
    known: KnownTasks,
    /// The runtime's threads, for those that outlive its shutdown.
    threads: Arc<RuntimeThreads>,
}

/// A map by tokio task id, looked up on every spawn, poll and exit of a test's tasks: hashed by
/// one multiplication instead of SipHash, as ids are integers tokio hands out, not attacker input.
type TaskIdMap<V> = HashMap<::tokio::task::Id, V, BuildHasherDefault<TaskIdHasher>>;

/// See [`TaskIdMap`]. The multiplication spreads sequential ids over the high bits the map's
/// control bytes use, and keeps their low bits distinct for its bucket index.
#[derive(Default)]
struct TaskIdHasher(u64);

impl Hasher for TaskIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The runtime's tasks leakcheck knows, in a few maps by task id, so that the workers of a
/// multi-thread runtime, which look a task up on every poll, rarely wait for each other. Each
/// map is behind the registry's shard lock, which a store releases: with the hooks on, every
/// task takes one at its spawn, each poll and its end, for a map operation.
struct KnownTasks {
    shards: [ShardLock<TaskIdMap<Known>>; 8],
}

impl Default for KnownTasks {
    fn default() -> Self {
        KnownTasks {
            shards: std::array::from_fn(|_| ShardLock::new(TaskIdMap::default())),
        }
    }
}

impl KnownTasks {
    /// The map that holds task `id`.
    fn of(&self, id: ::tokio::task::Id) -> &ShardLock<TaskIdMap<Known>> {
        let hash = BuildHasherDefault::<TaskIdHasher>::default().hash_one(id);
        // The top bits: the ones the multiplication mixes best.
        &self.shards[(hash >> 61) as usize]
    }

    /// How many tasks are known; exact when none starts or ends meanwhile.
    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }
}

/// How many leakcheck test runtimes are alive: while none is, spawns and first polls skip all of
/// this for the price of one load.
static LIVE_RUNTIMES: AtomicUsize = AtomicUsize::new(0);

/// Whether a spawn may land on a leakcheck test runtime, so that its record is worth keeping.
#[inline]
pub(crate) fn wants_spawn_record() -> bool {
    LIVE_RUNTIMES.load(Ordering::Relaxed) > 0
}

thread_local! {
    /// The test scope each runtime thread starts in.
    static THREAD_SCOPE: RefCell<Vec<ContextGuard>> = const { RefCell::new(Vec::new()) };
}

impl TestRuntime {
    pub(crate) fn new(scope: Arc<Scope>) -> Arc<TestRuntime> {
        Arc::new(TestRuntime {
            scope,
            known: KnownTasks::default(),
            threads: Arc::default(),
        })
    }

    /// Installs the hooks that keep this up to date on the runtime `builder` builds.
    pub(crate) fn install(self: &Arc<Self>, builder: &mut Builder) {
        let scope = Arc::clone(&self.scope);
        let (started, stopped) = (Arc::clone(&self.threads), Arc::clone(&self.threads));
        builder
            .on_thread_start(move || {
                started.started();
                let guard = context::enter(Arc::clone(&scope), None);
                THREAD_SCOPE.with(|guards| guards.borrow_mut().push(guard));
            })
            .on_thread_stop(move || {
                let guard = THREAD_SCOPE.with(|guards| guards.borrow_mut().pop());
                drop(guard);
                stopped.stopped();
            });
        #[cfg(tokio_unstable)]
        hooks::install(self, builder);
    }

    /// The runtime's threads.
    pub(crate) fn threads(&self) -> &RuntimeThreads {
        &self.threads
    }

    /// Makes the runtime known while the returned guard lives.
    pub(crate) fn register(self: &Arc<Self>, handle: &Handle) -> Registration {
        #[cfg(not(tokio_unstable))]
        claims::register(self, handle);
        #[cfg(tokio_unstable)]
        let _ = handle;
        LIVE_RUNTIMES.fetch_add(1, Ordering::Relaxed);
        Registration {
            runtime: Arc::clone(self),
        }
    }

    /// How many of the runtime's alive tasks leakcheck knows nothing about.
    pub(crate) fn unidentified(&self, handle: &Handle) -> usize {
        // A task's future is dropped, which forgets it here, a moment before tokio stops counting
        // it alive: for that moment it is counted as unidentified whatever the order of these
        // reads. So may a task spawned on another worker a moment ago, whose count (read with
        // no ordering, like tokio's) can show here after tokio's does. Harmless: a check looks
        // again while any unidentified task is counted.
        let alive = handle.metrics().num_alive_tasks();
        // Stable tokio: the roots `leakcheck::tokio::spawn` spawned here are known too, counted
        // in the test's scope instead of kept in `known` (see `claims::ClaimedRoot`).
        #[cfg(not(tokio_unstable))]
        let alive = alive.saturating_sub(self.scope.executor_roots());
        alive.saturating_sub(self.known.len())
    }

    /// The leakcheck record of the runtime task `id`, if the hooks registered it.
    #[cfg(tokio_unstable)]
    #[cfg_attr(not(leakcheck_taskdump), allow(dead_code))]
    pub(crate) fn record_of(&self, id: ::tokio::task::Id) -> Option<Shared<TaskRecord>> {
        self.known.of(id).lock().get(&id).map(|known| known.share())
    }

    /// The records of every runtime task the hooks registered (and that has not ended).
    #[cfg(leakcheck_taskdump)]
    pub(crate) fn record_ids(&self) -> Vec<crate::vocab::TaskId> {
        let mut ids = Vec::new();
        for shard in &self.known.shards {
            ids.extend(shard.lock().values().map(|known| known.share().id));
        }
        ids
    }
}

/// Keeps a [`TestRuntime`] findable; see [`TestRuntime::register`].
pub(crate) struct Registration {
    runtime: Arc<TestRuntime>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        LIVE_RUNTIMES.fetch_sub(1, Ordering::Relaxed);
        #[cfg(not(tokio_unstable))]
        claims::RUNTIMES
            .lock()
            .retain(|(_, runtime)| !std::ptr::eq(runtime.as_ptr(), Arc::as_ptr(&self.runtime)));
        #[cfg(tokio_unstable)]
        let _ = &self.runtime;
    }
}

#[cfg(not(tokio_unstable))]
type Known = usize;

#[cfg(not(tokio_unstable))]
pub(crate) use claims::ClaimedRoot;

/// Stable tokio: tracked spawns are counted, other tracked futures claim the runtime task they
/// run in.
#[cfg(not(tokio_unstable))]
mod claims {
    use std::cell::{Cell, RefCell};
    use std::future::Future;
    use std::panic::{self, AssertUnwindSafe};
    use std::pin::Pin;
    use std::sync::{Arc, Weak};
    use std::task::{Context, Poll};

    use ::tokio::runtime::Handle;
    use parking_lot::Mutex;

    use super::{wants_spawn_record, TestRuntime};
    use crate::registry::{Scope, TaskRecord};
    use crate::state::{ExecutorClaim, StateDetails};
    use crate::task::{install_executor_hooks, ExecutorHooks, Tracked};
    use crate::vocab::TaskKind;

    /// Every live test runtime, by tokio runtime id.
    pub(super) static RUNTIMES: Mutex<Vec<(::tokio::runtime::Id, Weak<TestRuntime>)>> =
        Mutex::new(Vec::new());

    /// Makes `runtime` findable by the tracked futures it polls.
    pub(super) fn register(runtime: &Arc<TestRuntime>, handle: &Handle) {
        install_executor_hooks(&TokioHooks);
        RUNTIMES.lock().push((handle.id(), Arc::downgrade(runtime)));
    }

    /// The runtime task a tracked future claimed, kept in its executor-claim slot and given back
    /// when the future ends.
    struct Claim {
        runtime: Arc<TestRuntime>,
        task: ::tokio::task::Id,
    }

    impl ExecutorClaim for Claim {
        fn release(&self) {
            unclaim(&self.runtime, self.task);
        }
    }

    /// What the core tells tokio of tracked futures.
    struct TokioHooks;

    impl ExecutorHooks for TokioHooks {
        /// At the first poll of a tracked future: claims the runtime task it is polled in,
        /// unless a [`ClaimedRoot`] made that task known already.
        fn first_poll(&self, record: &TaskRecord) {
            if !wants_spawn_record() || ROOT_POLLED.get() {
                return;
            }
            if let Some(task) = ::tokio::task::try_id() {
                claim(record, task);
            }
        }
    }

    thread_local! {
        /// Whether a [`ClaimedRoot`] is being polled on this thread: what is first polled inside
        /// it (itself included) runs in its runtime task, which its count makes known.
        ///
        /// A flag, not the task's id, so that a root's poll need not ask tokio for it. The only
        /// other tasks a root's poll can poll are ones the test runtime does not count: a
        /// `LocalSet`'s, and those of a runtime whose `block_on` runs inside it (in
        /// `block_in_place`), never a test runtime (only the harness calls its `block_on`).
        static ROOT_POLLED: Cell<bool> = const { Cell::new(false) };
    }

    pin_project_lite::pin_project! {
        /// A tracked future that `leakcheck::tokio::spawn` spawned on a test runtime, so the root
        /// of its runtime task: it makes that task known for as long as it lives, by a count in
        /// the test's scope (which the record holds already), with no map entry, no allocation
        /// and no word of its own. A tracked future first polled inside it runs in the same
        /// runtime task, so it claims nothing.
        pub(crate) struct ClaimedRoot<F> {
            #[pin]
            tracked: Tracked<F>,
        }

        impl<F> PinnedDrop for ClaimedRoot<F> {
            fn drop(this: Pin<&mut Self>) {
                // Uncounted after the task's exit, not before: tokio counts the task alive until
                // a moment after its future is dropped, and a check woken by the exit must not
                // find it unidentified for that moment. Even if a woken check's waker panics.
                let mut tracked = this.project().tracked;
                let ended = panic::catch_unwind(AssertUnwindSafe(|| tracked.as_mut().end()));
                tracked.scope().uncount_executor_root();
                if let Err(panic) = ended {
                    panic::resume_unwind(panic);
                }
            }
        }
    }

    impl<F: Future> ClaimedRoot<F> {
        /// `tracked`, counted as a task of the test runtime it is about to be spawned on; given
        /// back if the current runtime is not a test runtime, or not the one of the scope the
        /// task belongs to (a scope opened inside a test): then its first poll claims its task.
        pub(crate) fn new(tracked: Tracked<F>) -> Result<ClaimedRoot<F>, Tracked<F>> {
            if !spawns_onto_test_runtime_of(tracked.scope()) {
                return Err(tracked);
            }
            tracked.scope().count_executor_root();
            Ok(ClaimedRoot { tracked })
        }
    }

    impl<F: Future> Future for ClaimedRoot<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let _restore = RestoreRootPolled(ROOT_POLLED.replace(true));
            self.project().tracked.poll(cx)
        }
    }

    /// Puts back whether a root was being polled before, when a [`ClaimedRoot`]'s poll ends or
    /// unwinds.
    struct RestoreRootPolled(bool);

    impl Drop for RestoreRootPolled {
        fn drop(&mut self) {
            ROOT_POLLED.set(self.0);
        }
    }

    /// The test runtime that code running here spawns onto, if the current runtime is one.
    fn current_test_runtime() -> Option<Arc<TestRuntime>> {
        let handle = Handle::try_current().ok()?;
        test_runtime(handle.id())
    }

    /// Whether a spawn here lands on the test runtime of `scope`. Asked at every
    /// `leakcheck::tokio::spawn` on a test runtime, so answered from this thread's
    /// [`LAST_RUNTIME`] without a reference to the runtime: the cached runtime is alive, so no
    /// other live runtime has its id, and its scope is alive, so no other scope has its address
    /// (which is only compared).
    fn spawns_onto_test_runtime_of(scope: &Scope) -> bool {
        let Ok(handle) = Handle::try_current() else {
            return false;
        };
        let id = handle.id();
        let cached = LAST_RUNTIME
            .try_with(|last| match &*last.borrow() {
                Some(last) if last.id == id && last.runtime.strong_count() > 0 => {
                    Some(std::ptr::eq(last.scope, scope))
                }
                _ => None,
            })
            .ok()
            .flatten();
        cached.unwrap_or_else(|| test_runtime(id).is_some_and(|rt| std::ptr::eq(&*rt.scope, scope)))
    }

    fn claim(record: &TaskRecord, task: ::tokio::task::Id) {
        if record.kind() != TaskKind::Async
            || record
                .state_details_if_any()
                .is_some_and(StateDetails::is_claimed)
        {
            return;
        }
        let Some(runtime) = current_test_runtime() else {
            return;
        };
        *runtime.known.of(task).lock().entry(task).or_insert(0) += 1;
        if let Err(lost) = record
            .state_details()
            .claim(Box::new(Claim { runtime, task }))
        {
            // Claimed by a concurrent first poll in between.
            lost.release();
        }
    }

    thread_local! {
        /// The test runtime this thread last spawned a root on or claimed a task of: a
        /// runtime's threads work for it alone, so the shared list (and its lock, which workers
        /// would contend on) is read once per thread, not once per task.
        static LAST_RUNTIME: RefCell<Option<LastRuntime>> = const { RefCell::new(None) };
    }

    /// A test runtime, as [`LAST_RUNTIME`] keeps it.
    struct LastRuntime {
        id: ::tokio::runtime::Id,
        runtime: Weak<TestRuntime>,
        /// The address of its scope, which lives as long as it does: compared, never read.
        scope: *const Scope,
    }

    /// The live test runtime with tokio runtime id `id`, if it is one.
    fn test_runtime(id: ::tokio::runtime::Id) -> Option<Arc<TestRuntime>> {
        let cached = LAST_RUNTIME
            .try_with(|last| match &*last.borrow() {
                Some(last) if last.id == id => last.runtime.upgrade(),
                _ => None,
            })
            .ok()
            .flatten();
        if cached.is_some() {
            return cached;
        }
        let runtime = RUNTIMES
            .lock()
            .iter()
            .find(|(rt, _)| *rt == id)
            .and_then(|(_, runtime)| runtime.upgrade())?;
        let _ = LAST_RUNTIME.try_with(|last| {
            *last.borrow_mut() = Some(LastRuntime {
                id,
                runtime: Arc::downgrade(&runtime),
                scope: Arc::as_ptr(&runtime.scope),
            });
        });
        Some(runtime)
    }

    fn unclaim(runtime: &TestRuntime, task: ::tokio::task::Id) {
        let mut known = runtime.known.of(task).lock();
        if let Some(count) = known.get_mut(&task) {
            *count -= 1;
            if *count == 0 {
                known.remove(&task);
            }
        }
    }

    #[test]
    fn a_root_is_still_known_when_its_exit_wakes_a_check() {
        use crate::registry::{exit_signal, open_scope, ScopeLabel};
        use std::task::{Wake, Waker};

        /// A check's waker: notes how many roots the scope counted when it was woken on the
        /// thread that drops the root (a root's exit wakes checks as it ends, on its thread).
        struct Check {
            scope: Arc<Scope>,
            dropping: std::thread::ThreadId,
            roots_seen: Mutex<Option<usize>>,
        }
        impl Wake for Check {
            fn wake(self: Arc<Self>) {
                if std::thread::current().id() == self.dropping {
                    *self.roots_seen.lock() = Some(self.scope.executor_roots());
                }
            }
        }

        let scope = open_scope(ScopeLabel::Named("root exit".into()));
        // Any task's exit, on any thread, wakes the check and takes its waker: then the root's
        // own exit finds none to wake, and the attempt is made again.
        for _ in 0..100 {
            let root = {
                let _in_scope = crate::context::enter(Arc::clone(&scope), None);
                scope.count_executor_root();
                Box::pin(ClaimedRoot {
                    tracked: crate::task::track(std::future::pending::<()>()),
                })
            };
            let check = Arc::new(Check {
                scope: Arc::clone(&scope),
                dropping: std::thread::current().id(),
                roots_seen: Mutex::new(None),
            });
            let subscription = exit_signal().subscribe();
            let epoch = subscription.epoch();
            let woken_already = subscription.poll_exit(epoch, &Waker::from(Arc::clone(&check)));
            drop(root);
            assert_eq!(scope.executor_roots(), 0, "uncounted when dropped");
            let roots_seen = *check.roots_seen.lock();
            if let (false, Some(roots)) = (woken_already, roots_seen) {
                assert_eq!(
                    roots, 1,
                    "the exit woke the check after the root was uncounted"
                );
                return;
            }
        }
        panic!("other tasks' exits took the check's waker 100 times in a row");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_spawned_root_is_one_word_larger_than_its_future() {
        // The tracked future's record, and nothing for the count: a future of 16 bytes (this
        // one) stays in tokio's smallest task cell (128 bytes, which fit futures up to 24).
        type Small = std::future::Ready<u64>;
        assert_eq!(std::mem::size_of::<Small>(), 16);
        assert_eq!(std::mem::size_of::<ClaimedRoot<Small>>(), 24);
    }
}

#[cfg(tokio_unstable)]
pub(crate) use hooks::hand_off;

#[cfg(tokio_unstable)]
use hooks::Known;

/// `--cfg tokio_unstable`: the runtime's task hooks register every task.
#[cfg(tokio_unstable)]
mod hooks {
    use std::cell::{Cell, RefCell};
    use std::sync::Arc;

    use ::tokio::runtime::{Builder, TaskMeta};

    use super::TestRuntime;
    use crate::context::{self, HookPoll};
    use crate::registry::{Listed, ScopeLabel, Shared, TaskRecord};
    use crate::state::PollStart;
    use crate::vocab::TaskKind;

    /// What a report says a plain `tokio::spawn` task runs: tokio does not say.
    fn plain_task() -> &'static str {
        "(unknown: a future spawned with plain `tokio::spawn`)"
    }

    /// A runtime task leakcheck knows.
    pub(crate) enum Known {
        /// Registered by the spawn hook (a plain `tokio::spawn`): the hooks keep its state, and
        /// its record is this entry's alone, reached through its scope's list.
        HookDriven(Listed<TaskRecord>),
        /// A tracked future, which keeps its own state.
        Tracked(Shared<TaskRecord>),
    }

    impl Known {
        pub(super) fn share(&self) -> Shared<TaskRecord> {
            match self {
                Known::HookDriven(record) => record.share(),
                Known::Tracked(record) => Shared::clone(record),
            }
        }
    }

    thread_local! {
        /// The tracked record `leakcheck::tokio::spawn` is spawning on this thread right now.
        static HANDOFF: Cell<Option<Shared<TaskRecord>>> = const { Cell::new(None) };
        /// What the poll hooks made current, innermost last (`None` for unknown tasks).
        static POLLS: RefCell<Polls> = const { RefCell::new(Polls(Vec::new())) };
    }

    /// The polls the hooks see running on a thread, innermost last.
    struct Polls(Vec<Option<Polled>>);

    impl Drop for Polls {
        /// Innermost first, as the polls would have ended (see `context::enter_hook_poll`).
        fn drop(&mut self) {
            while let Some(poll) = self.0.pop() {
                drop(poll);
            }
        }
    }

    struct Polled {
        /// Makes the task current, and holds its record.
        context: HookPoll,
        /// For a hook-driven task, whose state the end of the poll settles: how the poll started.
        settle: Option<PollStart>,
    }

    /// Tells the spawn hook, until the guard drops, that the task spawned on this thread is
    /// `record`, already tracked.
    pub(crate) fn hand_off(record: Shared<TaskRecord>) -> HandOff {
        HANDOFF.set(Some(record));
        HandOff(())
    }

    /// Clears an unclaimed hand-off (the spawn went to a runtime without our hooks, or panicked).
    pub(crate) struct HandOff(());

    impl Drop for HandOff {
        fn drop(&mut self) {
            drop(HANDOFF.take());
        }
    }

    pub(super) fn install(runtime: &Arc<TestRuntime>, builder: &mut Builder) {
        let (spawned, terminated, polled) = (
            Arc::clone(runtime),
            Arc::clone(runtime),
            Arc::clone(runtime),
        );
        builder
            .on_task_spawn(move |meta| on_spawn(&spawned, meta))
            .on_task_terminate(move |meta| on_terminate(&terminated, meta))
            .on_before_task_poll(move |meta| on_before_poll(&polled, meta))
            .on_after_task_poll(|_| on_after_poll());
    }

    /// Runs on the spawning thread, inside `tokio::spawn`: the current scope and task are the
    /// spawner's. A thread that belongs to no test or named scope (a plain `std::thread` with a
    /// handle to the runtime) spawns into the runtime's test.
    fn on_spawn(runtime: &TestRuntime, meta: &TaskMeta<'_>) {
        let known = match HANDOFF.take() {
            Some(record) => Known::Tracked(record),
            None => {
                let (mut scope, parent) = context::spawn_context();
                if matches!(scope.label, ScopeLabel::Thread(_)) {
                    scope = Arc::clone(&runtime.scope);
                }
                let site = meta.spawned_at();
                Known::HookDriven(TaskRecord::register_listed_in(
                    scope,
                    parent,
                    TaskKind::Async,
                    None,
                    site,
                    plain_task,
                ))
            }
        };
        let replaced = runtime.known.of(meta.id()).lock().insert(meta.id(), known);
        drop(replaced);
    }

    fn on_terminate(runtime: &TestRuntime, meta: &TaskMeta<'_>) {
        let known = runtime.known.of(meta.id()).lock().remove(&meta.id());
        if let Some(Known::HookDriven(mut record)) = known {
            TaskRecord::exit_in_place(&mut record, |_| ());
        }
    }

    fn on_before_poll(runtime: &TestRuntime, meta: &TaskMeta<'_>) {
        let found = runtime
            .known
            .of(meta.id())
            .lock()
            .get(&meta.id())
            .map(|known| (known.share(), matches!(known, Known::HookDriven(_))));
        let poll = found.map(|(record, hook_driven)| {
            let settle = hook_driven.then(|| record.state.start_poll());
            Polled {
                context: context::enter_hook_poll(record),
                settle,
            }
        });
        POLLS.with(|polls| polls.borrow_mut().0.push(poll));
    }

    /// tokio calls it after every poll, also when the poll panicked or completed the task.
    fn on_after_poll() {
        let Some(Some(Polled { context, settle })) = POLLS.with(|polls| polls.borrow_mut().0.pop())
        else {
            return;
        };
        let record = context.leave();
        // (The terminate hook runs inside the poll: a task that completed has exited, and this
        // reference and this thread's batch of departed records are most often the last.)
        if let (false, Some(start)) = (record.has_exited(), settle) {
            record.end_pending_poll(record.state.pending_at(start));
        }
    }

    #[test]
    fn a_plain_tasks_record_block_is_reused_by_the_next_spawn_on_its_thread_once_unlinked() {
        use crate::tokio::test_runtime::{run_tokio_test, TokioTestConfig};
        fn record_address() -> Option<usize> {
            context::with_current_task(|task| task.map(|task| std::ptr::from_ref(task) as usize))
        }
        let config = TokioTestConfig::default(); // current-thread: one thread, one page of blocks
        run_tokio_test("reuse", crate::Options::new(), config, async {
            let first = ::tokio::spawn(async { record_address() }).await.unwrap();
            assert!(first.is_some(), "the hooks made the task current");
            // The ended task's record is freed once its thread unlinks it.
            crate::registry::unlink_departures();
            let second = ::tokio::spawn(async { record_address() }).await.unwrap();
            assert_eq!(
                first, second,
                "the next spawn built its record in the ended one's block"
            );
        });
    }
}
