//! Errors collected over one attribute, to be reported together.

/// Every mistake found so far, combined (through [`syn::Error::combine`]), so that a user fixes
/// them in one round instead of one compile per mistake.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error to the ones already found.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok` when no error was found, otherwise every error as one.
    pub(crate) fn into_result(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}
