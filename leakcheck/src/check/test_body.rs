//! What the code `#[leak_test]` generates calls: run the test body in a scope of its own, then
//! check that scope.

use std::future::Future;

use super::outcome;
use super::wait::Check;
use crate::context;
use crate::options::Options;
use crate::registry::{open_scope, ScopeLabel};
use crate::task::block_on;

/// The body of a `#[leak_test]` function: runs it in the test's own scope, then checks it.
///
/// `#[track_caller]`, so that a failure points at the test (see `outcome`).
#[track_caller]
pub fn run_test<R: 'static>(name: &'static str, options: Options, body: impl FnOnce() -> R) -> R {
    let _scope = context::enter(
        open_scope(ScopeLabel::Test(test_name(name).to_owned())),
        None,
    );
    let expects_panic = options.expects_panic;
    let check = match Check::try_new(options) {
        Ok(check) => check,
        Err(error) => return outcome::unusable_check(error, expects_panic),
    };
    let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
    let verdict = check.run_blocking();
    outcome::finish_test(output, verdict, expects_panic)
}

/// `my_crate::module::test` (from `module_path!()`) as libtest names it: `module::test`.
pub(crate) fn test_name(path: &str) -> &str {
    path.split_once("::").map_or(path, |(_crate, rest)| rest)
}

/// The body of an `async` `#[leak_test]` without a runtime: runs it on a minimal executor in the
/// test's own scope, then checks the scope, like [`run_test`].
///
/// Tasks the body hands to other executors (thread pools, a runtime it builds) are tracked as
/// usual; the check waits for them on this thread once the body is done.
#[track_caller]
pub fn run_async_test<F: Future>(name: &'static str, options: Options, body: F) -> F::Output
where
    F::Output: 'static,
{
    run_test(name, options, move || block_on(body))
}
