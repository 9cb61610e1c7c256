//! Listing tasks: the query string of `GET /api/{user_id}/tasks`, filters,
//! sort orders and cursor pagination.
//!
//! A cursor names the last task of a page by its sort key and id. The next
//! page holds the tasks strictly after it in (key, id) order, so tasks added
//! between requests never shift a page: none is repeated or skipped.

use std::cmp::Ordering;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::index::TaskSummary;
use crate::schedule::parse_instant;
use crate::{DomainError, Priority, Rule, Tag, TaskId};

/// Default page size.
pub const LIMIT_DEFAULT: usize = 50;
/// Largest page size.
pub const LIMIT_MAX: usize = 200;
/// Longest text search, in characters.
pub const Q_MAX: usize = 200;
/// Longest accepted cursor, in characters.
const CURSOR_MAX: usize = 1_024;

/// Which tasks by completion (`status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Status {
    /// Every task (the default).
    #[default]
    All,
    /// Open tasks.
    Pending,
    /// Completed tasks.
    Completed,
}

/// What to sort by (`sort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Due date; tasks without one come last in either order.
    Due,
    /// Priority.
    Priority,
    /// Title, case-insensitively.
    Title,
    /// Creation time (the default).
    #[default]
    Created,
    /// Last change.
    Updated,
}

impl Sort {
    /// The order used when `order` is not given: soonest due first, most
    /// urgent first, titles A–Z, newest first.
    pub fn default_order(self) -> Order {
        match self {
            Sort::Due | Sort::Title => Order::Asc,
            Sort::Priority | Sort::Created | Sort::Updated => Order::Desc,
        }
    }
}

/// Sort direction (`order`). Ties are broken by task id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// The filters of a list query; a task must pass all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    status: Status,
    priorities: Vec<Priority>,
    tags: Vec<Tag>,
    due_before: Option<DateTime<Utc>>,
    due_after: Option<DateTime<Utc>>,
    overdue: Option<bool>,
    has_due: Option<bool>,
    text: Option<String>,
}

/// A parsed list query: filters, sort, page size and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    filter: Filter,
    sort: Sort,
    order: Order,
    limit: usize,
    cursor: Option<Cursor>,
}

/// The value a task is sorted by; in a cursor, its variant names the sort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SortKey {
    Due(Option<DateTime<Utc>>),
    Priority(Priority),
    Title(String),
    Created(DateTime<Utc>),
    Updated(DateTime<Utc>),
}

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "k")]
    key: SortKey,
    #[serde(rename = "i")]
    id: TaskId,
    #[serde(rename = "o")]
    order: Order,
    /// The index page of the task it names (creation sorts only): where the
    /// next page starts reading. Absent in cursors made before the index.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
}

impl ListQuery {
    /// Parses a URL query string (with or without the leading `?`).
    ///
    /// Parameters: `status` (`all`|`pending`|`completed`); `priority` and
    /// `tag`, repeatable or comma-separated (any of the priorities, all of
    /// the tags); `due_before` and `due_after` (RFC 3339; the range is
    /// `due_after <= due_at < due_before`); `overdue` and `has_due`
    /// (`true`|`false`); `q` (case-insensitive text in title, description
    /// and tags, at most 200 characters); `sort` (`due`|`priority`|`title`|
    /// `created`|`updated`, default `created`); `order` (`asc`|`desc`,
    /// default per [`Sort::default_order`]); `limit` (1–200, default 50);
    /// `cursor` (from a previous page, with the same sort and order).
    ///
    /// An empty value is the same as leaving the parameter out. Unknown
    /// parameters are refused, as is a non-repeatable one given twice.
    pub fn parse(query: &str) -> Result<Self, DomainError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut filter = Filter::default();
        let (mut sort, mut order, mut limit, mut cursor) = (None, None, None, None);
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (name, value) = (name.as_ref(), value.as_ref());
            if name.is_empty() && value.is_empty() {
                continue;
            }
            let repeatable = matches!(name, "priority" | "tag");
            if !repeatable && seen.iter().any(|s| s == name) {
                return Err(DomainError::new(name, Rule::Duplicate, "must be given at most once"));
            }
            seen.push(name.to_owned());
            if value.is_empty() && name != "q" {
                continue;
            }
            match name {
                "status" => filter.status = parse_status(value)?,
                "priority" => {
                    for p in value.split(',') {
                        filter.priorities.push(p.parse()?);
                    }
                }
                "tag" => {
                    for t in value.split(',') {
                        filter.tags.push(Tag::parse(t)?);
                    }
                }
                "due_before" => filter.due_before = Some(parse_instant(value, name)?),
                "due_after" => filter.due_after = Some(parse_instant(value, name)?),
                "overdue" => filter.overdue = Some(parse_bool(name, value)?),
                "has_due" => filter.has_due = Some(parse_bool(name, value)?),
                "q" => filter.text = parse_text(value)?,
                "sort" => sort = Some(parse_sort(value)?),
                "order" => order = Some(parse_order(value)?),
                "limit" => limit = Some(parse_limit(value)?),
                "cursor" => cursor = Some(value.to_owned()),
                _ => return Err(DomainError::new(name, Rule::Unknown, "is not a known query parameter")),
            }
        }
        if let (Some(after), Some(before)) = (filter.due_after, filter.due_before) {
            if after >= before {
                return Err(DomainError::new("due_before", Rule::OutOfRange, "must be after due_after"));
            }
        }
        let sort = sort.unwrap_or_default();
        let order = order.unwrap_or(sort.default_order());
        let cursor = cursor.map(|raw| Cursor::decode(&raw, sort, order)).transpose()?;
        Ok(ListQuery { filter, sort, order, limit: limit.unwrap_or(LIMIT_DEFAULT), cursor })
    }

    /// The filters.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// What the list is sorted by.
    pub fn sort(&self) -> Sort {
        self.sort
    }

    /// The sort direction.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The page size.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The index page the cursor's task lives on, when the cursor says.
    pub(crate) fn cursor_page(&self) -> Option<u32> {
        self.cursor.as_ref().and_then(|c| c.page)
    }
}

fn parse_status(value: &str) -> Result<Status, DomainError> {
    match value {
        "all" => Ok(Status::All),
        "pending" => Ok(Status::Pending),
        "completed" => Ok(Status::Completed),
        _ => Err(DomainError::new("status", Rule::Format, "must be all, pending or completed")),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, DomainError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(DomainError::new(name, Rule::Format, "must be true or false")),
    }
}

fn parse_text(value: &str) -> Result<Option<String>, DomainError> {
    let text = value.trim();
    let len = text.chars().count();
    if len > Q_MAX {
        return Err(DomainError::new("q", Rule::TooLong, format!("at most {Q_MAX} characters, got {len}")));
    }
    Ok((!text.is_empty()).then(|| text.to_lowercase()))
}

fn parse_sort(value: &str) -> Result<Sort, DomainError> {
    match value {
        "due" => Ok(Sort::Due),
        "priority" => Ok(Sort::Priority),
        "title" => Ok(Sort::Title),
        "created" => Ok(Sort::Created),
        "updated" => Ok(Sort::Updated),
        _ => Err(DomainError::new("sort", Rule::Format, "must be due, priority, title, created or updated")),
    }
}

fn parse_order(value: &str) -> Result<Order, DomainError> {
    match value {
        "asc" => Ok(Order::Asc),
        "desc" => Ok(Order::Desc),
        _ => Err(DomainError::new("order", Rule::Format, "must be asc or desc")),
    }
}

fn parse_limit(value: &str) -> Result<usize, DomainError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::new("limit", Rule::Format, "must be a whole number"));
    }
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=LIMIT_MAX).contains(n))
        .ok_or_else(|| DomainError::new("limit", Rule::OutOfRange, format!("must be 1 to {LIMIT_MAX}")))
}

impl Cursor {
    /// URL-safe base64 (no padding) of the cursor's JSON.
    fn encode(&self) -> String {
        // Serializing plain data to JSON cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a cursor and checks it belongs to `sort` and `order`.
    fn decode(raw: &str, sort: Sort, order: Order) -> Result<Self, DomainError> {
        let invalid = || DomainError::new("cursor", Rule::Format, "is not a cursor from this list");
        if raw.len() > CURSOR_MAX {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.key.sort() != sort || cursor.order != order {
            return Err(DomainError::new("cursor", Rule::Format, "was made for another sort or order"));
        }
        Ok(cursor)
    }
}

impl SortKey {
    fn of(task: &TaskSummary, sort: Sort) -> Self {
        match sort {
            Sort::Due => SortKey::Due(task.due_at),
            Sort::Priority => SortKey::Priority(task.priority),
            Sort::Title => SortKey::Title(task.title.clone()),
            Sort::Created => SortKey::Created(task.created_at),
            Sort::Updated => SortKey::Updated(task.updated_at),
        }
    }

    fn sort(&self) -> Sort {
        match self {
            SortKey::Due(_) => Sort::Due,
            SortKey::Priority(_) => Sort::Priority,
            SortKey::Title(_) => Sort::Title,
            SortKey::Created(_) => Sort::Created,
            SortKey::Updated(_) => Sort::Updated,
        }
    }
}

/// The list order of two positions (key, id). Keys of different sorts never
/// meet: a cursor is checked against the query's sort when parsed.
fn compare(order: Order, (a, a_id): (&SortKey, TaskId), (b, b_id): (&SortKey, TaskId)) -> Ordering {
    let (missing_last, primary) = match (a, b) {
        (SortKey::Due(x), SortKey::Due(y)) => (x.is_none().cmp(&y.is_none()), x.cmp(y)),
        (SortKey::Priority(x), SortKey::Priority(y)) => (Ordering::Equal, x.cmp(y)),
        (SortKey::Title(x), SortKey::Title(y)) => (Ordering::Equal, x.cmp(y)),
        (SortKey::Created(x), SortKey::Created(y)) | (SortKey::Updated(x), SortKey::Updated(y)) => (Ordering::Equal, x.cmp(y)),
        _ => (Ordering::Equal, Ordering::Equal),
    };
    let directed = primary.then(a_id.cmp(&b_id));
    missing_last.then(match order {
        Order::Asc => directed,
        Order::Desc => directed.reverse(),
    })
}

/// Whether `task` passes every filter at `now` (which decides `overdue`).
pub fn matches(task: &TaskSummary, filter: &Filter, now: DateTime<Utc>) -> bool {
    let status = match filter.status {
        Status::All => true,
        Status::Pending => !task.completed,
        Status::Completed => task.completed,
    };
    // The summary's title and description are lowercased already, as is `q`.
    let text = filter.text.as_deref().is_none_or(|q| {
        task.title.contains(q) || task.description.as_ref().is_some_and(|d| d.contains(q)) || task.tags.iter().any(|t| t.contains(q))
    });
    let overdue = || !task.completed && task.due_at.is_some_and(|due| due < now);
    status
        && text
        && (filter.priorities.is_empty() || filter.priorities.contains(&task.priority))
        && filter.tags.iter().all(|t| task.tags.iter().any(|s| s == t.as_str()))
        && filter.due_before.is_none_or(|before| task.due_at.is_some_and(|due| due < before))
        && filter.due_after.is_none_or(|after| task.due_at.is_some_and(|due| due >= after))
        && filter.overdue.is_none_or(|want| overdue() == want)
        && filter.has_due.is_none_or(|want| task.due_at.is_some() == want)
}

/// Whether `task` lies after the query's cursor (every task does without one).
pub(crate) fn after_cursor(query: &ListQuery, task: &TaskSummary) -> bool {
    query
        .cursor
        .as_ref()
        .is_none_or(|c| compare(query.order, (&SortKey::of(task, query.sort), task.id), (&c.key, c.id)) == Ordering::Greater)
}

/// One page of `tasks` (each with the number of its index page) for `query`
/// at `now`: the ids of the matching tasks after the query's cursor, sorted,
/// at most `limit` of them, and the cursor of the next page when more follow.
pub fn page(tasks: Vec<(u32, TaskSummary)>, query: &ListQuery, now: DateTime<Utc>) -> (Vec<TaskId>, Option<String>) {
    let mut items: Vec<(SortKey, u32, TaskId)> =
        tasks.into_iter().filter(|(_, t)| matches(t, &query.filter, now)).map(|(n, t)| (SortKey::of(&t, query.sort), n, t.id)).collect();
    items.sort_by(|(a, _, a_id), (b, _, b_id)| compare(query.order, (a, *a_id), (b, *b_id)));
    let start = query
        .cursor
        .as_ref()
        .map_or(0, |c| items.partition_point(|(k, _, id)| compare(query.order, (k, *id), (&c.key, c.id)) != Ordering::Greater));
    let more = items.len() - start > query.limit;
    let page: Vec<(SortKey, u32, TaskId)> = items.into_iter().skip(start).take(query.limit).collect();
    let next = if more {
        page.last().map(|(key, n, id)| {
            let hint = (query.sort == Sort::Created).then_some(*n);
            Cursor { key: key.clone(), id: *id, order: query.order, page: hint }.encode()
        })
    } else {
        None
    };
    (page.into_iter().map(|(_, _, id)| id).collect(), next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTask, Tags, Task, Title, UserId};
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        parse_instant("2026-01-01T00:00:00Z", "t").unwrap()
    }

    fn id(n: u128) -> TaskId {
        uuid::Uuid::from_u128(n).to_string().parse().unwrap()
    }

    /// A task with id `n`, created `n` minutes after t0, due after `due` hours.
    fn task(n: u128, title: &str, priority: Priority, due: Option<i64>, done: bool) -> Task {
        let created = t0() + TimeDelta::minutes(n as i64 % 7);
        let mut t = Task::create(id(n), UserId::parse("alice").unwrap(), NewTask::new(Title::parse(title).unwrap()), created);
        t.priority = priority;
        t.due_at = due.map(|h| t0() + TimeDelta::hours(h));
        t.completed = done;
        t.updated_at = created + TimeDelta::minutes(n as i64 % 3);
        t
    }

    fn query(q: &str) -> ListQuery {
        ListQuery::parse(q).unwrap()
    }

    /// [`super::page`] over whole tasks, all on index page 0.
    fn page(tasks: Vec<Task>, q: &ListQuery, now: DateTime<Utc>) -> (Vec<Task>, Option<String>) {
        let summaries = tasks.iter().map(|t| (0, TaskSummary::of(t))).collect();
        let (ids, next) = super::page(summaries, q, now);
        (ids.iter().map(|id| tasks.iter().find(|t| t.id == *id).unwrap().clone()).collect(), next)
    }

    fn matches(task: &Task, filter: &Filter, now: DateTime<Utc>) -> bool {
        super::matches(&TaskSummary::of(task), filter, now)
    }

    fn ids(tasks: &[Task]) -> Vec<TaskId> {
        tasks.iter().map(|t| t.id).collect()
    }

    #[test]
    fn defaults() {
        let q = query("");
        assert_eq!((q.sort(), q.order(), q.limit(), q.filter()), (Sort::Created, Order::Desc, LIMIT_DEFAULT, &Filter::default()));
        assert_eq!(query("?sort=due").order(), Order::Asc);
        assert_eq!(query("sort=priority").order(), Order::Desc);
        assert_eq!(query("sort=title&order=desc").order(), Order::Desc);
        assert_eq!(query("status=&limit=").limit(), LIMIT_DEFAULT);
    }

    #[test]
    fn parameters_parse_and_decode() {
        let q = query("status=pending&priority=high,urgent&priority=low&tag=Home+Office&tag=x&due_after=2026-01-01T00:00:00%2B01:00&overdue=false&has_due=true&q=%20Milk%20&limit=200");
        let f = q.filter();
        assert_eq!(f.status, Status::Pending);
        assert_eq!(f.priorities, [Priority::High, Priority::Urgent, Priority::Low]);
        assert_eq!(f.tags, [Tag::parse("home office").unwrap(), Tag::parse("x").unwrap()]);
        assert_eq!(f.due_after, Some(t0() - TimeDelta::hours(1)));
        assert_eq!((f.overdue, f.has_due, f.text.as_deref()), (Some(false), Some(true), Some("milk")));
        assert_eq!(q.limit(), 200);
    }

    #[test]
    fn bad_parameters_name_the_parameter_and_rule() {
        for (raw, field, rule) in [
            ("stauts=all", "stauts", Rule::Unknown),
            ("status=done", "status", Rule::Format),
            ("status=all&status=pending", "status", Rule::Duplicate),
            ("priority=top", "priority", Rule::Format),
            ("tag=a!", "tag", Rule::Charset),
            ("due_before=tomorrow", "due_before", Rule::Format),
            ("due_after=2026-01-02T00:00:00Z&due_before=2026-01-01T00:00:00Z", "due_before", Rule::OutOfRange),
            ("overdue=yes", "overdue", Rule::Format),
            ("has_due=1", "has_due", Rule::Format),
            ("sort=random", "sort", Rule::Format),
            ("order=up", "order", Rule::Format),
            ("limit=0", "limit", Rule::OutOfRange),
            ("limit=201", "limit", Rule::OutOfRange),
            ("limit=99999999999999999999999", "limit", Rule::OutOfRange),
            ("limit=-1", "limit", Rule::Format),
            ("limit=ten", "limit", Rule::Format),
            ("cursor=%%%", "cursor", Rule::Format),
            ("cursor=e30", "cursor", Rule::Format),
        ] {
            let e = ListQuery::parse(raw).unwrap_err();
            assert_eq!((e.field.as_str(), e.rule), (field, rule), "{raw}");
        }
        let e = ListQuery::parse(&format!("q={}", "x".repeat(Q_MAX + 1))).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("q", Rule::TooLong));
        assert!(ListQuery::parse(&format!("q={}", "é".repeat(Q_MAX))).is_ok());
    }

    #[test]
    fn filters() {
        let now = t0() + TimeDelta::hours(5);
        let mut a = task(1, "Buy MILK", Priority::High, Some(1), false);
        a.tags = Tags::parse(&["home", "shopping"]).unwrap();
        let mut b = task(2, "Call mum", Priority::Low, Some(10), false);
        b.description = Some(crate::Description::parse("about the milkman").unwrap());
        let c = task(3, "Taxes", Priority::Urgent, None, true);
        let d = task(4, "Old", Priority::None, Some(2), true);
        let all = [a, b, c, d];
        let hits = |q: &str| -> Vec<u128> {
            let f = query(q).filter;
            all.iter().filter(|t| matches(t, &f, now)).map(|t| t.id.as_uuid().as_u128()).collect()
        };
        assert_eq!(hits(""), [1, 2, 3, 4]);
        assert_eq!(hits("status=pending"), [1, 2]);
        assert_eq!(hits("status=completed"), [3, 4]);
        assert_eq!(hits("priority=high&priority=urgent"), [1, 3]);
        assert_eq!(hits("tag=home"), [1]);
        assert_eq!(hits("tag=home,work"), Vec::<u128>::new());
        assert_eq!(hits("overdue=true"), [1]);
        assert_eq!(hits("overdue=false"), [2, 3, 4]);
        assert_eq!(hits("has_due=false"), [3]);
        assert_eq!(hits("due_before=2026-01-01T02:00:00Z"), [1]);
        assert_eq!(hits("due_after=2026-01-01T02:00:00Z"), [2, 4]);
        assert_eq!(hits("q=MILK"), [1, 2]);
        assert_eq!(hits("q=shop"), [1]);
        assert_eq!(hits("q=%20"), [1, 2, 3, 4]);
    }

    #[test]
    fn sort_orders() {
        let tasks = vec![
            task(1, "b", Priority::Low, None, false),
            task(2, "A", Priority::Urgent, Some(3), false),
            task(3, "c", Priority::None, Some(1), false),
            task(4, "a", Priority::Low, None, false),
        ];
        let order = |q: &str| -> Vec<u128> { page(tasks.clone(), &query(q), t0()).0.iter().map(|t| t.id.as_uuid().as_u128()).collect() };
        assert_eq!(order("sort=due"), [3, 2, 1, 4], "no due date last");
        assert_eq!(order("sort=due&order=desc"), [2, 3, 4, 1], "no due date last, even descending");
        assert_eq!(order("sort=priority"), [2, 4, 1, 3]);
        assert_eq!(order("sort=priority&order=asc"), [3, 1, 4, 2]);
        assert_eq!(order("sort=title"), [2, 4, 1, 3], "case-insensitive, ties by id");
        assert_eq!(order("sort=created"), [4, 3, 2, 1]);
        assert_eq!(order("sort=created&order=asc"), [1, 2, 3, 4]);
    }

    #[test]
    fn cursors_page_and_belong_to_their_sort() {
        let tasks: Vec<Task> = (1..=5).map(|n| task(n, "t", Priority::None, None, false)).collect();
        let (first, next) = page(tasks.clone(), &query("limit=2&sort=created&order=asc"), t0());
        assert_eq!(ids(&first), [id(1), id(2)]);
        let cursor = next.unwrap();
        assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let (second, _) = page(tasks.clone(), &query(&format!("limit=2&sort=created&order=asc&cursor={cursor}")), t0());
        assert_eq!(ids(&second), [id(3), id(4)]);
        let e = ListQuery::parse(&format!("sort=due&order=asc&cursor={cursor}")).unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("cursor", Rule::Format));
        assert!(ListQuery::parse(&format!("sort=created&cursor={cursor}")).is_err(), "default order is desc");
        let (last, next) = page(tasks, &query("limit=5&sort=created&order=asc"), t0());
        assert_eq!((last.len(), next), (5, None));
    }

    fn arb_task(n: u128) -> impl Strategy<Value = Task> {
        ("[a-cA-C]{1,2}", proptest::sample::select(Priority::ALL.to_vec()), proptest::option::of(-3i64..3), any::<bool>())
            .prop_map(move |(title, p, due, done)| task(n, &title, p, due, done))
    }

    fn arb_tasks(first: u128, len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Task>> {
        proptest::collection::vec(any::<u16>(), len).prop_flat_map(move |seeds| {
            seeds.iter().enumerate().map(|(i, s)| arb_task(first + (i as u128) * 65_536 + u128::from(*s))).collect::<Vec<_>>()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn paging_yields_every_match_once_in_order_despite_inserts(
            tasks in arb_tasks(1 << 40, 0..30),
            inserts in proptest::collection::vec(arb_tasks(1 << 80, 0..4), 0..6),
            sort in "(due|priority|title|created|updated)",
            order in proptest::option::of("(asc|desc)"),
            status in "(all|pending)",
            limit in 1usize..8,
        ) {
            let now = t0();
            let base = format!("sort={sort}&status={status}&limit={limit}{}", order.map(|o| format!("&order={o}")).unwrap_or_default());
            let first = query(&base);
            let expected: Vec<TaskId> = page(tasks.clone(), &ListQuery { limit: LIMIT_MAX, ..first.clone() }, now).0.iter().map(|t| t.id).collect();
            let mut store = tasks;
            let mut inserts = inserts.into_iter().enumerate().map(|(b, batch)| {
                batch.into_iter().enumerate().map(|(j, mut t)| {
                    t.id = id(((b as u128 + 1) << 80) | j as u128);
                    t
                }).collect::<Vec<_>>()
            });
            let mut seen: Vec<(SortKey, TaskId)> = Vec::new();
            let mut q = first;
            for round in 0.. {
                prop_assert!(round <= 100, "paging does not end");
                let (items, next) = page(store.clone(), &q, now);
                prop_assert!(items.len() <= limit);
                seen.extend(items.iter().map(|t| (SortKey::of(&TaskSummary::of(t), q.sort), t.id)));
                let Some(cursor) = next else { break };
                prop_assert_eq!(items.len(), limit);
                store.extend(inserts.next().unwrap_or_default());
                q = query(&format!("{base}&cursor={cursor}"));
            }
            for w in seen.windows(2) {
                prop_assert_eq!(compare(q.order, (&w[0].0, w[0].1), (&w[1].0, w[1].1)), Ordering::Less);
            }
            let seen_ids: Vec<TaskId> = seen.iter().map(|(_, id)| *id).collect();
            for id in &expected {
                prop_assert_eq!(seen_ids.iter().filter(|s| *s == id).count(), 1);
            }
            let original: Vec<TaskId> = seen_ids.iter().copied().filter(|id| expected.contains(id)).collect();
            prop_assert_eq!(original, expected);
        }

        #[test]
        fn due_sort_puts_tasks_without_due_last(tasks in arb_tasks(1, 0..20), desc in any::<bool>()) {
            let q = query(if desc { "sort=due&order=desc&limit=200" } else { "sort=due&limit=200" });
            let (items, _) = page(tasks, &q, t0());
            let first_none = items.iter().position(|t| t.due_at.is_none()).unwrap_or(items.len());
            prop_assert!(items[first_none..].iter().all(|t| t.due_at.is_none()));
        }

        #[test]
        fn query_parser_never_panics(raw in "[a-z_=&%0-9+,.:-]{0,60}") {
            let _ = ListQuery::parse(&raw);
        }
    }
}
