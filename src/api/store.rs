//! The customer API's RocksDB directory: the delivery log (`webhook-attempts` materialized,
//! retention-bounded) and the API keys (`webhook-api-keys`), with the topic offsets they were
//! read up to, always written together. Separate from the subscriptions table's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    IteratorMode, Options, ReadOptions, WriteBatch, compaction_filter::Decision,
};

use crate::records::{ApiKey, AttemptRecord};

use super::log::{
    LogPage, LogQuery, Position, attempt_key, delivery_key, delivery_prefix, endpoint_prefix,
    key_after, key_at_or_before, position_of_key, prefix_end,
};

/// Column family: attempt key ([`super::log`]) → the record's Avro bytes as read.
const CF_ATTEMPTS: &str = "attempts";
/// Column family: by-delivery key → empty (the attempt key is derived from it).
const CF_BY_DELIVERY: &str = "by_delivery";
/// Column family: key id → the API key's Avro bytes.
const CF_KEYS: &str = "keys";
/// Column family: `topic \0 partition` → next offset to read (i64 big-endian).
const CF_OFFSETS: &str = "offsets";

const BLOCK_CACHE_BYTES: usize = 64 << 20;

/// Entries one log query looks at before it returns what it has with a cursor: bounds the
/// cost of a query whose filters match little.
pub const SCAN_BUDGET: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB failed on {path}")]
    RocksDb {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
    #[error("stored entry in column family {cf} is corrupt")]
    Corrupt { cf: &'static str },
}

/// Which topic a consumed record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Attempts,
    Keys,
}

/// One consumed record, in topic order.
#[derive(Clone, Debug)]
pub struct Consumed {
    pub source: Source,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// What one [`ApiStore::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub attempts: u64,
    pub keys: u64,
    pub revoked: u64,
    /// Records that did not decode, or attempts already past retention.
    pub skipped: u64,
}

/// The store. Reads from any thread; `apply` is called by the follower only.
pub struct ApiStore {
    db: DB,
    path: PathBuf,
    /// Attempts older than this many ms are expired: skipped by reads, dropped by compaction.
    retention_ms: i64,
    /// The clock the retention is measured against, shared with the compaction filter.
    /// Kept current by [`ApiStore::tick`] (tests set it).
    now_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for ApiStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ApiStore {
    /// Opens (creating if needed) the store in `path`, keeping attempts for `retention`.
    pub fn open(path: impl AsRef<Path>, retention: Duration) -> Result<ApiStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let now_ms = Arc::new(AtomicI64::new(crate::delivery::now_ms()));
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_keep_log_file_num(3);
        db_opts.set_max_total_wal_size(64 << 20);
        // Data and offsets in different column families are flushed together.
        db_opts.set_atomic_flush(true);

        let log_options = |name: &'static str| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            let mut opts = Options::default();
            opts.set_block_based_table_factory(&table);
            opts.set_compression_type(DBCompressionType::Lz4);
            // Expired attempts disappear when their files are compacted, and every file is
            // compacted at least once a day, so a quiet log still shrinks.
            let now = Arc::clone(&now_ms);
            opts.set_compaction_filter(name, move |_level: u32, key: &[u8], _value: &[u8]| {
                match position_of_key(key) {
                    Some(p) if p.at_ms() < now.load(Ordering::Relaxed) - retention_ms => {
                        Decision::Remove
                    }
                    _ => Decision::Keep,
                }
            });
            opts.set_periodic_compaction_seconds(86_400);
            opts
        };
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_ATTEMPTS, log_options("attempts-retention")),
            ColumnFamilyDescriptor::new(CF_BY_DELIVERY, log_options("by-delivery-retention")),
            ColumnFamilyDescriptor::new(CF_KEYS, Options::default()),
            ColumnFamilyDescriptor::new(CF_OFFSETS, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs).map_err(|source| {
            StoreError::RocksDb {
                path: path.clone(),
                source,
            }
        })?;
        Ok(ApiStore {
            db,
            path,
            retention_ms,
            now_ms,
        })
    }

    /// Moves the store's clock (retention) to now.
    pub fn tick(&self) {
        self.now_ms
            .store(crate::delivery::now_ms(), Ordering::Relaxed);
    }

    /// The oldest attempt time still kept.
    fn horizon_ms(&self) -> i64 {
        self.now_ms
            .load(Ordering::Relaxed)
            .saturating_sub(self.retention_ms)
    }

    /// Applies consumed records with their offsets in one atomic write.
    pub fn apply(&self, batch: &[Consumed]) -> Result<Applied, StoreError> {
        let attempts = self.cf(CF_ATTEMPTS)?;
        let by_delivery = self.cf(CF_BY_DELIVERY)?;
        let keys = self.cf(CF_KEYS)?;
        let offsets = self.cf(CF_OFFSETS)?;
        let horizon = self.horizon_ms();
        let mut applied = Applied::default();
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut wb = WriteBatch::default();
        for record in batch {
            let slot = next
                .entry((record.topic.clone(), record.partition))
                .or_insert(0);
            *slot = (*slot).max(record.offset.saturating_add(1));
            match record.source {
                Source::Attempts => {
                    let Some(value) = record.value.as_deref() else {
                        applied.skipped += 1;
                        continue;
                    };
                    let Ok(attempt) = AttemptRecord::from_avro(value) else {
                        applied.skipped += 1;
                        continue;
                    };
                    if attempt.at_ms < horizon {
                        applied.skipped += 1;
                        continue;
                    }
                    let position = Position::new(attempt.at_ms, record.partition, record.offset);
                    let (Some(key), Some(index)) = (
                        attempt_key(&attempt.endpoint_id, position),
                        delivery_key(&attempt.endpoint_id, &attempt.delivery_id, position),
                    ) else {
                        applied.skipped += 1;
                        continue;
                    };
                    wb.put_cf(attempts, key, value);
                    wb.put_cf(by_delivery, index, []);
                    applied.attempts += 1;
                }
                Source::Keys => {
                    let Some(id) = record
                        .key
                        .as_deref()
                        .and_then(|k| std::str::from_utf8(k).ok())
                    else {
                        applied.skipped += 1;
                        continue;
                    };
                    match record.value.as_deref() {
                        None => {
                            wb.delete_cf(keys, id.as_bytes());
                            applied.revoked += 1;
                        }
                        Some(value) => match ApiKey::from_avro(value) {
                            Ok(key) if key.id == id => {
                                wb.put_cf(keys, id.as_bytes(), value);
                                applied.keys += 1;
                            }
                            _ => applied.skipped += 1,
                        },
                    }
                }
            }
        }
        for ((topic, partition), offset) in &next {
            wb.put_cf(
                offsets,
                offsets_key(topic, *partition),
                offset.to_be_bytes(),
            );
        }
        self.db.write(wb).map_err(|e| self.rocks(e))?;
        Ok(applied)
    }

    /// The next offset to read per partition of `topic`, as last applied.
    pub fn offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        let cf = self.cf(CF_OFFSETS)?;
        let mut prefix = topic.as_bytes().to_vec();
        prefix.push(0);
        let mut out = BTreeMap::new();
        for item in self.db.prefix_iterator_cf(cf, &prefix) {
            let (k, v) = item.map_err(|e| self.rocks(e))?;
            let Some(rest) = k.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let corrupt = || StoreError::Corrupt { cf: CF_OFFSETS };
            let partition = i32::from_be_bytes(rest.try_into().map_err(|_| corrupt())?);
            let offset = i64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt())?);
            out.insert(partition, offset);
        }
        Ok(out)
    }

    /// An API key by id.
    pub fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let cf = self.cf(CF_KEYS)?;
        match self
            .db
            .get_pinned_cf(cf, id.as_bytes())
            .map_err(|e| self.rocks(e))?
        {
            None => Ok(None),
            Some(bytes) => ApiKey::from_avro(&bytes)
                .map(Some)
                .map_err(|_| StoreError::Corrupt { cf: CF_KEYS }),
        }
    }

    /// Every API key (for operators' listings; keys are few).
    pub fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let cf = self.cf(CF_KEYS)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (_, v) = item.map_err(|e| self.rocks(e))?;
            out.push(ApiKey::from_avro(&v).map_err(|_| StoreError::Corrupt { cf: CF_KEYS })?);
        }
        Ok(out)
    }

    /// One page of `endpoint`'s log, newest first. Looks at no more than [`SCAN_BUDGET`]
    /// entries: a page may come back short with a cursor to continue.
    pub fn attempts(&self, endpoint: &str, query: &LogQuery) -> Result<LogPage, StoreError> {
        let horizon = self.horizon_ms();
        let since = query.since_ms.unwrap_or(i64::MIN).max(horizon);
        let (cf, prefix, primary_prefix) = match &query.delivery_id {
            Some(delivery) => (
                self.cf(CF_BY_DELIVERY)?,
                delivery_prefix(endpoint, delivery),
                endpoint_prefix(endpoint),
            ),
            None => (
                self.cf(CF_ATTEMPTS)?,
                endpoint_prefix(endpoint),
                endpoint_prefix(endpoint),
            ),
        };
        let (Some(prefix), Some(primary_prefix)) = (prefix, primary_prefix) else {
            return Ok(LogPage::default());
        };
        let mut start = prefix.clone();
        if let Some(until) = query.until_ms {
            start = start.max(key_at_or_before(&prefix, until));
        }
        if let Some(after) = query.after {
            start = start.max(key_after(&prefix, after));
        }
        let attempts = self.cf(CF_ATTEMPTS)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(prefix_end(&prefix));
        let mut it = self.db.raw_iterator_cf_opt(cf, opts);
        it.seek(&start);
        let limit = query.limit.max(1);
        let mut page = LogPage::default();
        let mut scanned = 0usize;
        let mut last_seen = None;
        while let Some(key) = it.key() {
            let Some(position) = position_of_key(key) else {
                break;
            };
            if !key.starts_with(&prefix) || position.at_ms() < since {
                break;
            }
            if scanned == SCAN_BUDGET {
                // Out of budget: the client continues from the last entry looked at.
                page.next = last_seen;
                return Ok(page);
            }
            scanned += 1;
            last_seen = Some(position);
            let value = if query.delivery_id.is_some() {
                let mut primary = primary_prefix.clone();
                primary.extend_from_slice(&key[prefix.len()..]);
                self.db
                    .get_cf(attempts, &primary)
                    .map_err(|e| self.rocks(e))?
            } else {
                it.value().map(<[u8]>::to_vec)
            };
            if let Some(record) = value.and_then(|v| AttemptRecord::from_avro(&v).ok())
                && query.keeps(&record)
            {
                if page.entries.len() == limit {
                    // One more matches: there is a next page, starting after the last kept.
                    page.next = page.entries.last().map(|(p, _)| *p);
                    return Ok(page);
                }
                page.entries.push((position, record));
            }
            it.next();
        }
        it.status().map_err(|e| self.rocks(e))?;
        Ok(page)
    }

    /// Every attempt of one delivery of `endpoint`, newest first (bounded like a page).
    pub fn delivery(
        &self,
        endpoint: &str,
        delivery: &str,
        account: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let page = self.attempts(
            endpoint,
            &LogQuery {
                delivery_id: Some(delivery.to_owned()),
                account_id: account.map(str::to_owned),
                limit: 1_000,
                ..LogQuery::default()
            },
        )?;
        Ok(page.entries.into_iter().map(|(_, r)| r).collect())
    }

    /// Writes memtables to files (at shutdown, so the next start replays no log).
    pub fn flush(&self) -> Result<(), StoreError> {
        let cfs = [
            self.cf(CF_ATTEMPTS)?,
            self.cf(CF_BY_DELIVERY)?,
            self.cf(CF_KEYS)?,
            self.cf(CF_OFFSETS)?,
        ];
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
            .map_err(|e| self.rocks(e))
    }

    /// Compacts the log now (tests: expired entries are dropped by compaction).
    pub fn compact_log(&self) -> Result<(), StoreError> {
        for name in [CF_ATTEMPTS, CF_BY_DELIVERY] {
            self.db
                .compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Entries in the attempts column family, expired or not (tests).
    pub fn raw_attempt_count(&self) -> Result<usize, StoreError> {
        let cf = self.cf(CF_ATTEMPTS)?;
        let mut n = 0;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            item.map_err(|e| self.rocks(e))?;
            n += 1;
        }
        Ok(n)
    }

    /// Sets the store's clock (tests of retention).
    pub fn set_now_for_tests(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::Relaxed);
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or(StoreError::MissingColumnFamily(name))
    }

    fn rocks(&self, source: rocksdb::Error) -> StoreError {
        StoreError::RocksDb {
            path: self.path.clone(),
            source,
        }
    }
}

fn offsets_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut key = topic.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;
    const NOW: i64 = 1_773_585_000_000;

    fn attempt(endpoint: &str, delivery: &str, at_ms: i64, outcome: &str) -> AttemptRecord {
        AttemptRecord {
            delivery_id: delivery.into(),
            endpoint_id: endpoint.into(),
            account_id: "acct_1".into(),
            at_ms,
            outcome: outcome.into(),
            ..crate::records::attempt::tests::sample()
        }
    }

    fn consumed(offset: i64, record: &AttemptRecord) -> Consumed {
        Consumed {
            source: Source::Attempts,
            topic: "attempts".into(),
            partition: 0,
            offset,
            key: Some(record.endpoint_id.clone().into_bytes()),
            value: Some(record.to_avro().unwrap()),
        }
    }

    fn store(dir: &Path) -> ApiStore {
        let s = ApiStore::open(dir, Duration::from_millis(7 * DAY_MS as u64)).unwrap();
        s.set_now_for_tests(NOW);
        s
    }

    fn ids(page: &LogPage) -> Vec<String> {
        page.entries
            .iter()
            .map(|(_, r)| format!("{}@{}", r.delivery_id, r.at_ms - NOW))
            .collect()
    }

    #[test]
    fn an_endpoints_log_is_newest_first_and_pages_with_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let mut batch = Vec::new();
        for i in 0..5i64 {
            batch.push(consumed(
                i,
                &attempt("ep_1", &format!("msg_{i}"), NOW - 1000 + i, "delivered"),
            ));
            batch.push(consumed(
                100 + i,
                &attempt("ep_2", "msg_x", NOW - 500 + i, "delivered"),
            ));
        }
        assert_eq!(s.apply(&batch).unwrap().attempts, 10);
        let mut q = LogQuery {
            limit: 2,
            ..Default::default()
        };
        let first = s.attempts("ep_1", &q).unwrap();
        assert_eq!(ids(&first), ["msg_4@-996", "msg_3@-997"]);
        q.after = first.next;
        let second = s.attempts("ep_1", &q).unwrap();
        assert_eq!(ids(&second), ["msg_2@-998", "msg_1@-999"]);
        q.after = second.next;
        let third = s.attempts("ep_1", &q).unwrap();
        assert_eq!(ids(&third), ["msg_0@-1000"]);
        assert_eq!(third.next, None, "the last page says so");
        assert_eq!(s.offsets("attempts").unwrap()[&0], 105);
    }

    #[test]
    fn filters_time_ranges_and_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let batch = vec![
            consumed(0, &attempt("ep_1", "msg_a", NOW - 3000, "retry_scheduled")),
            consumed(1, &attempt("ep_1", "msg_b", NOW - 2000, "delivered")),
            consumed(2, &attempt("ep_1", "msg_a", NOW - 1000, "delivered")),
        ];
        s.apply(&batch).unwrap();
        let q = |f: &dyn Fn(&mut LogQuery)| {
            let mut q = LogQuery {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            ids(&s.attempts("ep_1", &q).unwrap())
        };
        assert_eq!(
            q(&|q| q.outcome = Some("delivered".into())),
            ["msg_a@-1000", "msg_b@-2000"]
        );
        assert_eq!(
            q(&|q| q.delivery_id = Some("msg_a".into())),
            ["msg_a@-1000", "msg_a@-3000"]
        );
        assert_eq!(
            q(&|q| q.until_ms = Some(NOW - 1500)),
            ["msg_b@-2000", "msg_a@-3000"]
        );
        assert_eq!(
            q(&|q| q.since_ms = Some(NOW - 2000)),
            ["msg_a@-1000", "msg_b@-2000"]
        );
        assert!(q(&|q| q.account_id = Some("acct_2".into())).is_empty());
        assert_eq!(
            s.delivery("ep_1", "msg_a", Some("acct_1")).unwrap().len(),
            2
        );
    }

    #[test]
    fn retention_hides_then_compaction_drops_old_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.apply(&[
            consumed(
                0,
                &attempt("ep_1", "msg_old", NOW - 6 * DAY_MS, "delivered"),
            ),
            consumed(1, &attempt("ep_1", "msg_new", NOW - 1000, "delivered")),
            consumed(
                2,
                &attempt("ep_1", "msg_ancient", NOW - 8 * DAY_MS, "delivered"),
            ),
        ])
        .unwrap();
        assert_eq!(
            s.raw_attempt_count().unwrap(),
            2,
            "already expired: never stored"
        );
        s.set_now_for_tests(NOW + 2 * DAY_MS);
        let q = LogQuery {
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            s.attempts("ep_1", &q).unwrap().entries.len(),
            1,
            "past retention: hidden"
        );
        s.db.flush_cf(s.cf(CF_ATTEMPTS).unwrap()).unwrap();
        s.compact_log().unwrap();
        assert_eq!(s.raw_attempt_count().unwrap(), 1, "and compaction drops it");
    }

    #[test]
    fn keys_are_stored_replaced_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let made = ApiKey::generate(Some("acct_1".into()), None, 1);
        let record = |offset, value: Option<Vec<u8>>, key: &str| Consumed {
            source: Source::Keys,
            topic: "keys".into(),
            partition: 0,
            offset,
            key: Some(key.as_bytes().to_vec()),
            value,
        };
        let applied = s
            .apply(&[
                record(0, Some(made.key.to_avro().unwrap()), &made.key.id),
                record(1, Some(made.key.to_avro().unwrap()), "key_0000000000000000"),
                record(2, Some(b"junk".to_vec()), "key_1111111111111111"),
            ])
            .unwrap();
        assert_eq!(
            (applied.keys, applied.skipped),
            (1, 2),
            "mismatched and junk records skipped"
        );
        assert_eq!(s.key(&made.key.id).unwrap(), Some(made.key.clone()));
        assert_eq!(s.keys().unwrap().len(), 1);
        s.apply(&[record(3, None, &made.key.id)]).unwrap();
        assert_eq!(s.key(&made.key.id).unwrap(), None);
        assert_eq!(s.offsets("keys").unwrap()[&0], 4);
    }
}
