//! The Todo platform's domain: the rules that matter to a user, with no I/O.
//!
//! Types here parse rather than validate: a value of [`Title`] or [`UserId`]
//! that exists is valid, so the HTTP adapters in `components/` only translate.

pub mod audit;
pub mod error;
pub mod event;
pub mod feed;
pub mod fields;
pub mod ids;
pub mod index;
pub mod ledger;
pub mod occurrence;
pub mod phrase;
pub mod precondition;
pub mod query;
pub mod quick;
pub mod recurrence;
pub mod relay;
pub mod reminder;
pub mod schedule;
pub mod task;

pub use error::{DomainError, Rule};
pub use event::{EventType, TaskEvent};
pub use fields::{Description, Priority, Tag, Tags, Title};
pub use ids::{EventId, TaskId, UserId};
pub use index::{IndexPage, Scan, StoredTask, TaskSummary};
pub use ledger::{Created, LegacyLedger, StoredLedger, UserLedger};
pub use occurrence::{NextOccurrence, OccurrenceRequest, SeriesEnd};
pub use precondition::IfMatch;
pub use query::{matches, page, Filter, ListQuery, Order, Sort, Status};
pub use quick::QuickAdd;
pub use recurrence::{Anchor, RecurrenceRule};
pub use schedule::{Reminder, ReminderOffset, Reminders, TimeZone};
pub use task::{Completion, NewTask, Task, TaskPatch};
