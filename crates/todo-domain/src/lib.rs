//! The Todo platform's domain: the rules that matter to a user, with no I/O.
//!
//! Types here parse rather than validate: a value of [`Title`] or [`UserId`]
//! that exists is valid, so the HTTP adapters in `components/` only translate.

pub mod audit;
pub mod error;
pub mod event;
pub mod ids;
pub mod ledger;
pub mod task;

pub use error::{DomainError, Rule};
pub use event::{EventType, TaskEvent};
pub use ids::{EventId, TaskId, UserId};
pub use ledger::UserLedger;
pub use task::{NewTask, Task, Title};
