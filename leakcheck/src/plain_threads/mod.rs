//! Threads created without leakcheck's wrappers — `std::thread::spawn`, another crate's pool, C
//! code — tracked from their creation, like [`leakcheck::thread`](crate::thread) ones.
//!
//! The `pthread_create` interposer (`os/linux/pthread.rs`) calls `on_create` in the creating
//! thread. That records the new thread at once, in the scope current there and as a child of the
//! task running there (so a thread still starting already counts as alive), with the creator's
//! stack as its creation site. The new thread then makes that task current for everything it
//! creates in turn (`HandOver::start`), so grandchildren land in the same scope however deep,
//! and its record exits when the thread's thread-locals are destroyed — after its start routine
//! returned or `pthread_exit` unwound it, just before `join` returns.
//!
//! Left alone: threads the main thread creates outside any scope before a check looked at the
//! main thread (a test harness's: libtest runs each test on a thread the main thread creates),
//! which the census still sees; and `leakcheck::thread`'s, which records its own with an exact
//! spawn site ([`claim_next_creation`]). A runtime leakcheck builds for a test gives its threads
//! up when they start ([`disown_current_thread`]).
//!
//! What a check and a report make of these records: [`facts`] (the creation stack: spawn site,
//! one-time initialisers) and [`observe`] (the live thread: name, inferred wait, idle pools).

mod facts;
mod observe;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::config::{self, ThreadsMode};
use crate::registry::{ExitOnDrop, Scope, Shared, TaskRecord};

pub(crate) use facts::{
    spawn_site_of, spawning_functions_of, started_by_initialiser, user_site_of,
};
#[cfg(feature = "tokio")]
pub(crate) use observe::runs_a_runtime_worker;
pub(crate) use observe::{is_idle_pool_thread, name_of};

/// How threads leakcheck did not spawn are found in this process; reports say it once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tracking {
    /// Every thread is recorded when it is created.
    FromCreation,
    /// Only by the census of the OS thread list, for the reason given.
    CensusOnly(&'static str),
}

impl Tracking {
    /// One line for a report's notes.
    pub(crate) fn describe(self) -> String {
        match self {
            Tracking::FromCreation => {
                "threads: every thread is tracked from its creation (LEAKCHECK_THREADS=all)".into()
            }
            Tracking::CensusOnly(why) => format!(
                "threads: only leakcheck's own are tracked from their creation, others are found by census ({why})"
            ),
        }
    }
}

/// How threads are found in this process.
pub(crate) fn tracking() -> Tracking {
    static TRACKING: OnceLock<Tracking> = OnceLock::new();
    // Threads created meanwhile (by an allocator) must not re-enter this initialisation.
    *TRACKING.get_or_init(|| {
        untracked_section(|| {
            if config::get().threads == ThreadsMode::Census {
                return Tracking::CensusOnly("LEAKCHECK_THREADS=census");
            }
            interposer_state()
        })
    })
}

#[cfg(leakcheck_interpose)]
fn interposer_state() -> Tracking {
    if crate::os::pthread::is_active() {
        Tracking::FromCreation
    } else {
        Tracking::CensusOnly("glibc's pthread_create could not be found with dlsym")
    }
}

#[cfg(not(leakcheck_interpose))]
fn interposer_state() -> Tracking {
    Tracking::CensusOnly(env!("LEAKCHECK_CENSUS_REASON"))
}

/// Notes for a report whose survivors are `records`: the one a build without debug info needs.
pub(crate) fn notes_on(records: &[Shared<TaskRecord>]) -> Vec<String> {
    let blind = records
        .iter()
        .filter_map(|record| facts::facts_of(record))
        .any(|facts| facts.no_debug_info);
    if blind {
        vec![
            "threads were created in code built without debug info, so their spawn sites and \
              the lines they block at are unknown: set `debug = 1` (or `\"line-tables-only\"`) in \
              the profile, for example [profile.test] or [profile.release]"
                .to_owned(),
        ]
    } else {
        Vec::new()
    }
}
/// Frames kept of a creator's stack: enough to pass std's spawn machinery, a pool crate's or a
/// runtime's, and a lazy initialiser's, and reach the caller in a debug build (a tokio runtime's
/// first thread is ~23 frames below the user's `build()` call there, a libtest test's spawn
/// ~35 above the thread's start); bounded, because walking costs per frame. Release builds
/// inline most of these, so their walks stop well before. Most walks end before the bound (the
/// stack ends), so it costs nothing then; it is high enough for an initialiser that recurses
/// before it spawns, whose `Once` frames would otherwise be cut off and the thread blamed on
/// the test that first touched it.
#[cfg(leakcheck_interpose)]
const CREATION_FRAMES: usize = 128;

/// Whether creation stacks are taken (always, except when a benchmark measures their cost).
static CREATION_STACKS: AtomicBool = AtomicBool::new(true);

/// Whether tracking from creation is paused (only while a benchmark measures the census mode).
static PAUSED: AtomicBool = AtomicBool::new(false);

/// For benchmarks, which compare modes in one run (`LEAKCHECK_THREADS` is read once): pauses
/// tracking from creation (`track = false` behaves as `census`), and turns creation stacks off
/// (plain threads are then still tracked, but reports cannot say where they were created).
pub fn set_for_benchmark(track: bool, creation_stacks: bool) {
    PAUSED.store(!track, Ordering::Relaxed);
    CREATION_STACKS.store(creation_stacks, Ordering::Relaxed);
}

thread_local! {
    /// Set by `leakcheck::thread` just before std creates its thread, which it records itself.
    static CLAIMED: Cell<bool> = const { Cell::new(false) };
    /// How many [`untracked_section`]s this thread is in.
    static UNTRACKED: Cell<u32> = const { Cell::new(0) };
    /// This thread's own record, if it was created plainly: exited when thread-locals are
    /// destroyed, the last thing a thread does.
    static OWN_RECORD: RefCell<Option<ExitOnDrop>> = const { RefCell::new(None) };
}

/// Says that the next thread this thread creates is `leakcheck::thread`'s, already recorded.
/// Dropping the claim withdraws it, in case std failed before creating the thread.
pub(crate) fn claim_next_creation() -> Claim {
    CLAIMED.with(|claimed| claimed.set(true));
    Claim(())
}

/// See [`claim_next_creation`].
#[must_use]
pub(crate) struct Claim(());

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMED.with(|claimed| claimed.set(false));
    }
}

/// Says that the calling thread, created plainly, belongs to a harness or runtime leakcheck
/// drives itself (a test runtime's worker): its record leaves its creator's scope now. What the
/// thread creates is still tracked.
///
/// Returns the record it had (ended), for the harness to [`relist`](Disowned::relist) if the
/// thread outlives the harness's use of it.
pub(crate) fn disown_current_thread() -> Option<Disowned> {
    let own = OWN_RECORD
        .try_with(|own| own.borrow_mut().take())
        .ok()
        .flatten()?;
    let record = Shared::clone(&own.0);
    drop(own);
    Some(Disowned(record))
}

/// The ended record of a plain thread a harness took over ([`disown_current_thread`]).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))] // Only the tokio integration relists.
pub(crate) struct Disowned(Shared<TaskRecord>);

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl Disowned {
    /// The thread's OS identity, once it has started.
    pub(crate) fn thread(&self) -> Option<crate::os::ThreadHandle> {
        self.0.os_thread().copied()
    }

    /// Lists the thread again, in `scope`, under the parent it was created by and as created
    /// the same way: for a harness thread still running when the harness is done with it (a
    /// test runtime's blocking-pool thread stuck in a job after the runtime shut down), which
    /// the check of `scope` then reports like any plain thread. The thread is alive as long as
    /// the returned guard, which the harness drops when the thread stops.
    #[cfg(leakcheck_interpose)]
    pub(crate) fn relist(&self, scope: &Arc<Scope>) -> Option<ExitOnDrop> {
        TaskRecord::relist_created(&self.0, Arc::clone(scope)).map(ExitOnDrop)
    }

    /// Without the interposer no plain thread has a record, so none is disowned.
    #[cfg(not(leakcheck_interpose))]
    pub(crate) fn relist(&self, _scope: &Arc<Scope>) -> Option<ExitOnDrop> {
        None
    }
}

/// Runs `f` with the threads this thread creates meanwhile left untracked: leakcheck's own
/// machinery (a runtime's task dump runs on a thread of its own) is no test's leak.
pub(crate) fn untracked_section<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            UNTRACKED.with(|depth| depth.set(depth.get() - 1));
        }
    }
    UNTRACKED.with(|depth| depth.set(depth.get() + 1));
    let _leave = Leave;
    f()
}

/// A future whose polls are [`untracked_section`]s.
#[cfg_attr(not(leakcheck_taskdump), allow(dead_code))]
pub(crate) async fn untracked<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| untracked_section(|| future.as_mut().poll(cx))).await
}

/// Installs `on_create` in the interposer before `main`, so that no thread is missed.
#[cfg(leakcheck_interpose)]
#[used]
#[link_section = ".init_array"]
static INSTALL_AT_LOAD: extern "C" fn() = install_at_load;

#[cfg(leakcheck_interpose)]
extern "C" fn install_at_load() {
    crate::os::pthread::install(on_create);
}

/// Called by the interposer in a thread that is creating another: records the new thread, and
/// returns what the new thread needs to join its creator's scope, or `None` to leave it alone.
#[cfg(leakcheck_interpose)]
fn on_create() -> Option<Box<dyn crate::os::pthread::ThreadStart>> {
    if CLAIMED.with(|claimed| claimed.replace(false)) || UNTRACKED.with(|depth| depth.get() > 0) {
        return None;
    }
    // This may run inside this thread's own leakcheck code, if that allocated and the allocator
    // created a thread: what that code holds (the settings being read, the context borrowed)
    // leaves the thread untracked rather than re-entered (the census still sees it).
    if config::being_read_here() {
        return None;
    }
    if tracking() != Tracking::FromCreation || PAUSED.load(Ordering::Relaxed) {
        return None;
    }
    let (scope, parent) = crate::context::try_spawn_context()?;
    if parent.is_none() && is_main_thread_outside_any_scope(&scope.label) {
        return None;
    }
    let mut frames = [0usize; CREATION_FRAMES];
    let taken = if CREATION_STACKS.load(Ordering::Relaxed) {
        crate::os::pthread::own_stack(&mut frames)
    } else {
        0
    };
    let record = TaskRecord::register_created(
        scope,
        parent,
        crate::registry::Creation {
            stack: frames[..taken].into(),
            start_name: OnceLock::new(),
        },
    );
    Some(Box::new(HandOver(Some(record))))
}

/// Whether the main thread's own scope is the scope of a check (a program's `main`, a doctest),
/// rather than a test harness's thread that creates test threads.
static MAIN_IS_CHECKED: AtomicBool = AtomicBool::new(false);

/// Says that a check looks at `scope`: threads created in it stay in it, whatever their names;
/// and if it is the main thread's own, the threads the main thread creates are the code under
/// test's from now on.
pub(crate) fn checking(scope: &crate::registry::Scope) {
    scope.mark_checked();
    if is_main_threads_own(&scope.label) {
        MAIN_IS_CHECKED.store(true, Ordering::Relaxed);
    }
}

/// The main thread's implicit scope.
fn is_main_threads_own(label: &crate::registry::ScopeLabel) -> bool {
    crate::context::is_main_threads_scope(label)
}

/// The main thread's implicit scope before any check looked at it: threads created there are a
/// test harness's (libtest creates every test's thread from the main thread).
#[cfg(leakcheck_interpose)]
fn is_main_thread_outside_any_scope(label: &crate::registry::ScopeLabel) -> bool {
    is_main_threads_own(label) && !MAIN_IS_CHECKED.load(Ordering::Relaxed)
}

/// A new thread's record, handed from its creator to the thread itself.
#[cfg(leakcheck_interpose)]
struct HandOver(Option<Shared<TaskRecord>>);

#[cfg(leakcheck_interpose)]
impl crate::os::pthread::ThreadStart for HandOver {
    fn start(mut self: Box<Self>) {
        let Some(record) = self.0.take() else { return };
        // Exits the record if anything below unwinds, or if there are no thread-locals to keep
        // it in (not at a thread's start): never a record without a thread.
        let exit = ExitOnDrop(Shared::clone(&record));
        record.set_os_thread(crate::os::ThreadHandle::current());
        if let Some(created) = record.created() {
            let _ = created
                .start_name
                .set(crate::os::pthread::own_kernel_name());
        }
        crate::context::inherit(record);
        let _ = OWN_RECORD.try_with(move |own| own.borrow_mut().replace(exit));
    }
}

#[cfg(leakcheck_interpose)]
impl Drop for HandOver {
    fn drop(&mut self) {
        // Never started: the thread could not be created.
        if let Some(record) = self.0.take() {
            record.exit();
        }
    }
}
