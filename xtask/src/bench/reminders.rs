//! Reminder lateness: how late the scheduler fires reminders due close together.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::client::{Client, Users};
use super::Series;

/// How many reminders are set.
const COUNT: usize = 200;
/// Between two reminders' due times; the first is due 30 s from now.
const SPACING_MS: i64 = 300;

/// 200 reminders due within the same minute: how late each fired (`fired_at` in
/// the reminder event minus its `remind_at`), read back from the audit logs.
pub fn lateness(client: &Client, run_id: u32) -> Result<Series> {
    let users = Users::new(client, &format!("bench-reminder-{run_id}"), 20)?;
    let first = Utc::now() + chrono::Duration::seconds(30);
    for i in 0..COUNT {
        let remind_at = first + chrono::Duration::milliseconds(i as i64 * SPACING_MS);
        let body = json!({
            "title": format!("reminder {i}"),
            "due_at": (remind_at + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Millis, true),
            "reminders": [remind_at.to_rfc3339_opts(SecondsFormat::Millis, true)],
        });
        let (user, token) = users.get(i);
        client.create(user, token, &body)?;
    }
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let millis = fired(client, &users)?;
        if millis.len() >= COUNT {
            let early = millis.iter().filter(|m| **m < 0.0).count();
            let note = format!("{COUNT} reminders due within one minute over {} users; {early} early; {} fired", users.len(), millis.len());
            return Ok(Series::latency("reminder lateness (fired_at - remind_at)", millis, note));
        }
        if Instant::now() > deadline {
            bail!("only {} of {COUNT} reminders fired within 150 s", millis.len());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Lateness in ms of every reminder event in the users' audit logs so far.
fn fired(client: &Client, users: &Users) -> Result<Vec<f64>> {
    let instant = |v: &Value| v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    let mut millis = Vec::new();
    for u in 0..users.len() {
        let (user, token) = users.get(u);
        for entry in client.audit_entries(user, token, "com.todo.reminder.due.v1")? {
            if let (Some(fired), Some(due)) = (instant(&entry["data"]["fired_at"]), instant(&entry["data"]["remind_at"])) {
                millis.push((fired - due).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0);
            }
        }
    }
    Ok(millis)
}
