//! tokio integration. (Owned by the async-tasks work; stub.)
