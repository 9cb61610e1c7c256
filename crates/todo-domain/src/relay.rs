//! The outbox relay's queue: the users whose committed events still wait for
//! a publish that failed, so that a Dapr job publishes them without the user
//! coming back.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::UserId;

/// Users whose outbox a relay job still has to publish, in user-id order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayQueue {
    users: BTreeSet<UserId>,
}

impl RelayQueue {
    /// Adds `user`; `false` when the user was already waiting (nothing to write).
    pub fn enlist(&mut self, user: &UserId) -> bool {
        self.users.insert(user.clone())
    }

    /// The first `limit` waiting users: one relay run handles at most that many.
    pub fn batch(&self, limit: usize) -> Vec<UserId> {
        self.users.iter().take(limit).cloned().collect()
    }

    /// Removes the users whose outbox is empty now.
    pub fn done(&mut self, flushed: &[UserId]) {
        for user in flushed {
            self.users.remove(user);
        }
    }

    /// How many users still wait.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user waits.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn a_user_waits_once_until_flushed() {
        let mut queue = RelayQueue::default();
        assert!(queue.enlist(&user("bob")));
        assert!(queue.enlist(&user("alice")));
        assert!(!queue.enlist(&user("bob")), "enlisting twice writes nothing");
        assert_eq!(queue.batch(1), [user("alice")]);
        assert_eq!(queue.batch(10), [user("alice"), user("bob")]);
        queue.done(&[user("alice")]);
        assert_eq!((queue.len(), queue.batch(10)), (1, vec![user("bob")]));
        queue.done(&[user("bob"), user("carol")]);
        assert!(queue.is_empty());
    }

    #[test]
    fn the_stored_queue_round_trips_and_rejects_bad_ids() {
        let mut queue = RelayQueue::default();
        queue.enlist(&user("auth0|123"));
        let json = serde_json::to_value(&queue).unwrap();
        assert_eq!(json, serde_json::json!({ "users": ["auth0|123"] }));
        assert_eq!(serde_json::from_value::<RelayQueue>(json).unwrap(), queue);
        assert!(serde_json::from_value::<RelayQueue>(serde_json::json!({ "users": ["a b"] })).is_err());
    }
}
