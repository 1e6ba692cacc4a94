//! Read-only statistics for metrics: the connection pool's state and the outbox backlog.
//!
//! Both are cheap enough to read on every scrape or poll: the pool figures are in memory, and
//! the backlog query reads only PENDING rows through the partial index `platform_outbox_due`.

use crate::{Database, StorageError};

/// A connection pool's state at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, in use or idle.
    pub size: u32,
    /// Open connections not checked out.
    pub idle: u32,
    /// Most connections the pool may open.
    pub max: u32,
}

impl PoolStats {
    /// Returns the connections checked out now.
    pub fn in_use(&self) -> u32 {
        self.size.saturating_sub(self.idle)
    }
}

/// Returns `db`'s pool state. sqlx does not expose how many callers wait for a connection.
pub fn pool_stats(db: &Database) -> PoolStats {
    crate::with_db!(db, |pool| PoolStats {
        size: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    })
}

/// The pending outbox messages of one destination.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxBacklog {
    /// The receiver, as given to [`crate::outbox::enqueue`].
    pub destination: String,
    /// Messages waiting for (re)delivery, leased ones included.
    pub pending: i64,
    /// When the oldest of them was enqueued (unix micros).
    pub oldest_created_at: i64,
}

/// Returns the pending outbox messages per destination (all tenants), ordered by destination;
/// destinations with nothing pending are absent.
pub async fn outbox_backlog(db: &Database) -> Result<Vec<OutboxBacklog>, StorageError> {
    let rows = crate::with_db!(db, |pool| {
        sqlx::query_as(
            "SELECT destination, COUNT(*) AS pending, MIN(created_at) AS oldest_created_at \
             FROM platform_outbox WHERE status = 'PENDING' \
             GROUP BY destination ORDER BY destination",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox;

    crate::conformance_tests! {
        async fn backlog_counts_pending_messages_per_destination(db: Database) {
            assert!(outbox_backlog(&db).await.unwrap().is_empty());
            let before = crate::time::now_micros();
            let mut tx = db.begin().await.unwrap();
            for (destination, key) in [("b.Two", "k1"), ("a.One", "k1"), ("b.Two", "k2")] {
                outbox::enqueue(&mut tx, "t1", destination, key, b"payload")
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();

            let backlog = outbox_backlog(&db).await.unwrap();
            let summary: Vec<(&str, i64)> = backlog
                .iter()
                .map(|b| (b.destination.as_str(), b.pending))
                .collect();
            assert_eq!(summary, [("a.One", 1), ("b.Two", 2)]);
            for row in &backlog {
                assert!(row.oldest_created_at >= before, "{row:?}");
            }
        }

        async fn pool_stats_count_a_checked_out_connection(db: Database) {
            let stats = pool_stats(&db);
            assert!(stats.max >= 1 && stats.size <= stats.max, "{stats:?}");
            // Connections used by the set-up go back to the pool in a task of the pool's own:
            // wait (bounded) until none is checked out.
            let settled = |want: u32| {
                let db = db.clone();
                async move {
                    for _ in 0..200 {
                        if pool_stats(&db).in_use() == want {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    pool_stats(&db).in_use()
                }
            };
            assert_eq!(settled(0).await, 0);
            let tx = db.begin().await.unwrap();
            assert_eq!(pool_stats(&db).in_use(), 1);
            assert!(pool_stats(&db).size >= 1);
            tx.rollback().await.unwrap();
            assert_eq!(settled(0).await, 0);
        }
    }
}
