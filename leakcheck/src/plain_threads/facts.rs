//! What a plain thread's creation stack says: where it was created, and whether a one-time
//! initialiser started it. Symbolised when a check first needs it, once per distinct stack.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::infer;
use crate::registry::TaskRecord;
use crate::report::{Frame, Site};
use crate::symbols::{Address, SymbolCache};

/// What one creation stack says.
#[derive(Debug, Default)]
pub(crate) struct CreationFacts {
    /// The first frame outside std, core, alloc, leakcheck and libc: the spawn site.
    pub(crate) site: Option<Site>,
    /// When the spawn site is in a dependency (a pool crate, a runtime): the first frame of the
    /// user's own code, which led to it.
    pub(crate) user_site: Option<Site>,
    /// The functions of those two frames (`my_app::pool::Pool::new`), for `ignore_spawned_at`
    /// patterns that name a function.
    pub(crate) spawning_functions: Vec<String>,
    /// Set if a one-time initialiser started the thread: where (see `infer::once`).
    pub(crate) initialiser: Option<Option<Site>>,
    /// Whether the stack shows the user's own code: if not, the thread was created by library
    /// machinery alone (a pool replacing one of its threads), on behalf of whatever created
    /// the creating thread.
    pub(crate) from_user_code: bool,
    /// Whether a known pool's spawner created it, so that it may sit idle between jobs.
    pub(crate) pool: bool,
    /// The creator's frame (the would-be spawn site) has no file and line: code built without
    /// debug info.
    pub(crate) no_debug_info: bool,
}

/// Spawners of pools whose threads wait for jobs between them (see `infer::pool`).
const POOL_SPAWNERS: &[&str] = &[
    "tokio::runtime::blocking::pool::Spawner::spawn_thread",
    "rayon_core::registry::",
];

/// Distinct creation stacks symbolised so far; bounded, since a process may create threads from
/// any number of places.
const CACHED_STACKS: usize = 4096;

/// Facts already read, by creation stack.
type FactsByStack = HashMap<Box<[usize]>, Arc<CreationFacts>>;

/// The facts of `record`'s creation stack, if it was created plainly.
pub(crate) fn facts_of(record: &TaskRecord) -> Option<Arc<CreationFacts>> {
    let creation = record.created()?;
    if creation.stack.is_empty() {
        return Some(Arc::default());
    }
    static CACHE: OnceLock<Mutex<FactsByStack>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(facts) = cache.lock().get(&creation.stack) {
        return Some(Arc::clone(facts));
    }
    let facts = Arc::new(read_facts(&creation.stack));
    let mut cache = cache.lock();
    if cache.len() >= CACHED_STACKS {
        cache.clear();
    }
    cache.insert(creation.stack.clone(), Arc::clone(&facts));
    Some(facts)
}

/// Where `record` was spawned: its `#[track_caller]` site, or for a plain thread the site its
/// creation stack gives (`None` if it gives none).
pub(crate) fn spawn_site_of(record: &TaskRecord) -> Option<Site> {
    match facts_of(record) {
        Some(facts) => facts.site.clone(),
        None => Some(Site::from_location(record.spawn_site)),
    }
}

/// If a one-time initialiser started `record`: the thread belongs to the process, and the site
/// says which initialiser (if the stack shows one).
///
/// An ancestor's initialiser counts only through threads that library machinery alone created
/// (a pool replacing a worker of a global pool): a thread created by code of the user's, such
/// as a job running on a global pool's worker, is that code's, whoever created the worker.
pub(crate) fn started_by_initialiser(record: &TaskRecord) -> Option<Option<Site>> {
    for task in std::iter::once(record).chain(record.ancestors()) {
        let facts = facts_of(task)?;
        if facts.initialiser.is_some() {
            return facts.initialiser.clone();
        }
        if facts.from_user_code {
            return None;
        }
    }
    None
}

fn read_facts(stack: &[usize]) -> CreationFacts {
    let (frames, columns) = symbolise(stack);
    let site_at = |at: usize| site_of_frame(&frames[at], columns[at]);
    let site = infer::creation_site(&frames);
    let user = infer::first_user_frame(&frames).filter(|&user| Some(user) != site);
    let initialiser =
        infer::once::started_by_initialiser(&frames).map(|found| found.site.and_then(site_at));
    let pool = frames.iter().any(|frame| {
        let name = infer::normalise(frame.function());
        POOL_SPAWNERS.iter().any(|prefix| name.starts_with(prefix))
    });
    CreationFacts {
        site: site.and_then(site_at),
        user_site: user.and_then(site_at),
        spawning_functions: [site, user]
            .into_iter()
            .flatten()
            .map(|at| frames[at].function().to_owned())
            .collect(),
        initialiser,
        from_user_code: infer::first_user_frame(&frames).is_some(),
        pool,
        // std ships with line tables: what tells is the creator's own frame having none.
        no_debug_info: site.is_some_and(|at| frames[at].line().is_none()),
    }
}

fn site_of_frame(frame: &Frame, column: u32) -> Option<Site> {
    Some(Site::new(frame.file()?, frame.line()?, column))
}

/// The functions that created a plain thread (its spawn site's, and the user's that led there),
/// empty for a thread leakcheck spawned itself.
pub(crate) fn spawning_functions_of(record: &TaskRecord) -> Vec<String> {
    facts_of(record).map_or_else(Vec::new, |facts| facts.spawning_functions.clone())
}

/// The user's frame a plain thread's creation came from, when its spawn site is a dependency's.
pub(crate) fn user_site_of(record: &TaskRecord) -> Option<Site> {
    facts_of(record)?.user_site.clone()
}

/// The frames at `stack`'s return addresses, inlined ones first, and their columns (0 when
/// debug info does not say).
fn symbolise(stack: &[usize]) -> (Vec<Frame>, Vec<u32>) {
    let mut symbols = SymbolCache::new();
    let mut frames = Vec::with_capacity(stack.len());
    let mut columns = Vec::with_capacity(stack.len());
    for &ip in stack {
        for symbol in symbols.symbols(Address::Return(ip)).iter() {
            frames.push(Frame {
                function: symbol.function.clone(),
                file: symbol.file.clone(),
                line: symbol.line,
            });
            columns.push(symbol.column.unwrap_or(0));
        }
    }
    (frames, columns)
}
