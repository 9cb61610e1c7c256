//! Issue 18's targets: each one's goal, the ceiling it is compared to, and
//! the verdict of a run (measured value, pass or fail, ratio to the ceiling).

use crate::stack::Store;

/// Which way a goal points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// The measured value must be at most this.
    AtMost(f64),
    /// The measured value must be at least this.
    AtLeast(f64),
}

impl Goal {
    /// Whether `measured` meets the goal; `None` when nothing was measured.
    pub fn met(self, measured: Option<f64>) -> Option<bool> {
        let v = measured.filter(|v| v.is_finite())?;
        Some(match self {
            Goal::AtMost(limit) => v <= limit,
            Goal::AtLeast(limit) => v >= limit,
        })
    }

    /// `<= 6` or `>= 270`.
    pub fn text(self) -> String {
        match self {
            Goal::AtMost(v) => format!("<= {}", trim(v)),
            Goal::AtLeast(v) => format!(">= {}", trim(v)),
        }
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// One target of the issue.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// Stable key (report rows, JSON, plot).
    pub id: &'static str,
    /// What is measured, in words.
    pub what: &'static str,
    /// Unit of the goal and the measured value.
    pub unit: &'static str,
    /// The goal.
    pub goal: Goal,
    /// The key of the ceiling it is compared to ([`super::ceilings`]), if any.
    pub ceiling: Option<&'static str>,
}

/// The targets that apply to `store`.
pub fn for_store(store: Store) -> Vec<Target> {
    let t = |id, what, unit, goal, ceiling| Target { id, what, unit, goal, ceiling };
    // Today (issue 18): 53.3 req/s on PostgreSQL, near 40 on SQLite; the goal is 5x.
    let create_rate = match store {
        Store::Postgres => 270.0,
        Store::Sqlite => 200.0,
    };
    let mut all = vec![
        t(
            "cpu_per_create",
            "CPU per accepted create, every process of the stack, consumers included",
            "ms",
            Goal::AtMost(6.0),
            Some("cpu_per_txn"),
        ),
        t("create_8_clients", "create, 8 clients closed loop: throughput", "req/s", Goal::AtLeast(create_rate), Some("txn_8_clients_rps")),
        t(
            "create_p99_at_100",
            "create p99 at a fixed 100 req/s (open loop, from the intended send time)",
            "ms",
            Goal::AtMost(100.0),
            Some("txn_1_client_p99"),
        ),
        t("create_sequential_p50", "create, 1 client sequential: p50", "ms", Goal::AtMost(8.0), Some("txn_publish_1_client_p50")),
        t("audit_p95_at_100", "write -> audit entry p95 at 100 creates/s", "ms", Goal::AtMost(50.0), Some("event_path_p95")),
        t("sse_p95_at_100", "write -> SSE client p95 at 100 creates/s", "ms", Goal::AtMost(100.0), Some("event_path_p95")),
        t("big_user_tasks", "tasks the big user holds (seeded within the time budget)", "tasks", Goal::AtLeast(10_000.0), None),
        t("big_page_default_p95", "big user: page of 50, default sort, p95", "ms", Goal::AtMost(15.0), Some("bulk_get_50_p95")),
        t(
            "big_page_filter_p95",
            "big user: page of 50 with a filter (priority=high), p95",
            "ms",
            Goal::AtMost(15.0),
            Some("bulk_get_50_p95"),
        ),
        t("big_page_search_p95", "big user: page of 50 with a text search (q=), p95", "ms", Goal::AtMost(15.0), Some("bulk_get_50_p95")),
        t("big_create_vs_small", "big user's create p50 / a 10-task user's create p50", "x", Goal::AtMost(1.25), None),
    ];
    if store == Store::Sqlite {
        all.push(t(
            "dev_load_max",
            "a single developer (5 creates/s + 5 lists/s, open loop): max latency from the intended time",
            "ms",
            Goal::AtMost(1000.0),
            Some("healthz_1_client_p99"),
        ));
    }
    all
}

/// A target's verdict in one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The target.
    pub target: Target,
    /// The measured value (`None`: not measured, e.g. a series failed).
    pub measured: Option<f64>,
    /// The ceiling's value in the same run.
    pub ceiling: Option<f64>,
    /// How it was measured, or why it was not.
    pub note: String,
}

impl Outcome {
    /// Whether the goal is met; `None` when nothing was measured.
    pub fn pass(&self) -> Option<bool> {
        self.target.goal.met(self.measured)
    }

    /// Measured value / ceiling: how far from the building block's own limit
    /// (a throughput ratio below 1 and a latency or CPU ratio above 1 are the
    /// cost of what the stack adds).
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.measured?, self.ceiling?)
    }
}

/// `measured / ceiling`, `None` unless both are finite and the ceiling positive.
pub fn ratio(measured: f64, ceiling: f64) -> Option<f64> {
    (measured.is_finite() && ceiling.is_finite() && ceiling > 0.0).then(|| measured / ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(goal: Goal, measured: Option<f64>, ceiling: Option<f64>) -> Outcome {
        let target = Target { id: "x", what: "x", unit: "ms", goal, ceiling: Some("c") };
        Outcome { target, measured, ceiling, note: String::new() }
    }

    #[test]
    fn pass_follows_the_goal_direction_and_its_bound_is_inclusive() {
        assert_eq!(outcome(Goal::AtMost(6.0), Some(37.0), None).pass(), Some(false));
        assert_eq!(outcome(Goal::AtMost(6.0), Some(6.0), None).pass(), Some(true));
        assert_eq!(outcome(Goal::AtLeast(270.0), Some(53.3), None).pass(), Some(false));
        assert_eq!(outcome(Goal::AtLeast(270.0), Some(300.0), None).pass(), Some(true));
    }

    #[test]
    fn nothing_measured_is_no_pass() {
        assert_eq!(outcome(Goal::AtMost(6.0), None, Some(1.0)).pass(), None);
        assert_eq!(outcome(Goal::AtMost(6.0), Some(f64::NAN), Some(1.0)).pass(), None, "NaN is not below 6");
    }

    #[test]
    fn the_ratio_needs_a_positive_ceiling() {
        assert_eq!(outcome(Goal::AtLeast(270.0), Some(53.3), Some(1815.0)).ratio().map(|r| (r * 1000.0).round()), Some(29.0));
        assert_eq!(ratio(5.0, 0.0), None);
        assert_eq!(ratio(5.0, f64::INFINITY), None);
        assert_eq!(outcome(Goal::AtMost(1.0), Some(2.0), None).ratio(), None);
    }

    #[test]
    fn every_store_has_the_issues_targets_with_unique_ids() {
        for store in [Store::Sqlite, Store::Postgres] {
            let targets = for_store(store);
            let mut ids: Vec<&str> = targets.iter().map(|t| t.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), targets.len());
            assert!(ids.contains(&"cpu_per_create") && ids.contains(&"sse_p95_at_100"));
        }
        assert_eq!(for_store(Store::Postgres).iter().find(|t| t.id == "create_8_clients").unwrap().goal, Goal::AtLeast(270.0));
        assert!(for_store(Store::Sqlite).iter().any(|t| t.id == "dev_load_max"));
        assert_eq!(Goal::AtMost(6.0).text(), "<= 6");
        assert_eq!(Goal::AtMost(1.25).text(), "<= 1.25");
    }
}
