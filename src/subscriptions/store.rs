//! The RocksDB side of the subscriptions table: endpoints by id, an account index for the
//! join, the breaker status of endpoints, the outbox of owner notices this instance owes, and
//! the topic offsets they were read up to, always written together.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DataBlockIndexType, FlushOptions, IteratorMode, Options, ReadOptions, WriteBatch,
};
use serde::Deserialize;

use crate::ids::{AccountId, EndpointId};

use super::endpoint::{Endpoint, Op};
use super::status::{EndpointStatus, notice_id};
use crate::records::{ENDPOINT_DISABLED, EndpointNotification};

/// Column family: endpoint id → [`FORMAT_JSON`] + JSON of the endpoint.
const CF_ENDPOINTS: &str = "endpoints";
/// Column family: `account_id \0 endpoint_id` → the same bytes as in `endpoints`, scanned
/// by account prefix. A covering index: the join reads an account's endpoints in one range
/// scan instead of a scan plus a point lookup per endpoint, for twice the disk space.
const CF_BY_ACCOUNT: &str = "by_account";
/// Column family: partition (i32 big-endian) → next offset to read (i64 big-endian).
const CF_OFFSETS: &str = "offsets";
/// Column family: the topic this directory materializes, the endpoint count and the
/// instance id.
const CF_META: &str = "meta";
/// Column family: endpoint id → JSON of its [`EndpointStatus`] (the breaker's record).
const CF_STATUS: &str = "status";
/// Column family: notice id → Avro `EndpointNotification` this instance still has to write
/// to the notifications topic. Filled in the same atomic write that applies a disabling this
/// instance won, so a crash between disabling and notifying cannot lose the notice.
const CF_OUTBOX: &str = "outbox";

const META_TOPIC: &[u8] = b"topic";
const META_COUNT: &[u8] = b"count";
/// A random id made when the directory is created: the `by` of the status records this
/// instance writes. It survives restarts, so a restarted process still recognises its own
/// disablings and sends the notices it owes.
const META_INSTANCE: &[u8] = b"instance";

/// First byte of a stored endpoint. The table stores its own format (JSON, fast to decode
/// and readable with RocksDB tools), independent of the wire schema; a new layout gets a new
/// byte.
const FORMAT_JSON: u8 = 1;

/// Block cache shared by the column families: the whole table of a large deployment
/// (a million endpoints is ~0.5 GB uncompressed) need not fit, the hot accounts do.
const BLOCK_CACHE_BYTES: usize = 128 << 20;

/// One consumed record of the subscriptions topic, in topic order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub partition: i32,
    pub offset: i64,
    /// `None` for a record that did not decode: nothing changes but its offset is recorded,
    /// so it is not read again.
    pub op: Option<Op>,
}

/// What one [`Store::apply`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Endpoints inserted or replaced.
    pub upserted: u64,
    /// Tombstones that removed an endpoint (a tombstone for an unknown id counts nowhere).
    pub deleted: u64,
    /// Updates ignored because the stored version (or status epoch) was higher.
    pub stale: u64,
    /// Status records applied (disablings and re-enablings).
    pub statuses: u64,
    /// Owner notices this instance now owes (its own disablings that won).
    pub notices: u64,
    /// Records without an operation (did not decode).
    pub skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB failed on {path}")]
    RocksDb {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("{path} holds the table of topic {stored:?}, not {requested:?}; use another directory")]
    TopicMismatch {
        path: PathBuf,
        stored: String,
        requested: String,
    },
    #[error("stored entry {key:?} in column family {cf} is corrupt")]
    Corrupt { cf: &'static str, key: String },
    #[error("stored endpoint {id} does not decode")]
    CorruptEndpoint {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
    #[error("a notice for endpoint {id} does not encode")]
    Notice {
        id: EndpointId,
        #[source]
        source: Box<crate::records::avro::AvroError>,
    },
    #[error("endpoint {id} does not serialize")]
    Serialize {
        id: EndpointId,
        #[source]
        source: serde_json::Error,
    },
}

/// The materialized table. Cheap reads from any thread; [`Store::apply`] is serialized.
pub struct Store {
    db: DB,
    path: PathBuf,
    topic: String,
    /// Exact number of endpoints, persisted in `meta` with every batch.
    count: AtomicU64,
    /// See [`META_INSTANCE`].
    instance: String,
    /// Serializes `apply`: it reads stored versions and then writes, and keeps `count`.
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("topic", &self.topic)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// The version and account of a stored endpoint: all `apply` needs to decide.
#[derive(Deserialize)]
struct StoredHead {
    version: i64,
    account_id: AccountId,
}

impl Store {
    /// Opens (creating if needed) the table in `path` for `topic`. Refuses a directory that
    /// materializes another topic, since its offsets would mean nothing here.
    pub fn open(path: impl AsRef<Path>, topic: &str) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);

        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_compression_type(DBCompressionType::Lz4);
        // Few files on a small table, and a bounded number open on a large one.
        db_opts.set_max_open_files(1024);
        db_opts.set_keep_log_file_num(3);
        // Data and offsets live in different column families: flush them together so the
        // files on disk never hold one without the other, and bound the WAL a restart replays.
        db_opts.set_atomic_flush(true);
        db_opts.set_max_total_wal_size(64 << 20);

        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_ENDPOINTS, point_lookup_options(&cache)),
            ColumnFamilyDescriptor::new(CF_BY_ACCOUNT, scan_options(&cache)),
            ColumnFamilyDescriptor::new(CF_OFFSETS, Options::default()),
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
            ColumnFamilyDescriptor::new(CF_STATUS, point_lookup_options(&cache)),
            ColumnFamilyDescriptor::new(CF_OUTBOX, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs).map_err(|source| {
            StoreError::RocksDb {
                path: path.clone(),
                source,
            }
        })?;
        let mut store = Store {
            db,
            path,
            topic: topic.to_owned(),
            count: AtomicU64::new(0),
            instance: String::new(),
            write_lock: Mutex::new(()),
        };
        store.claim_topic(topic)?;
        let count = store.read_count()?;
        *store.count.get_mut() = count;
        store.instance = store.claim_instance()?;
        Ok(store)
    }

    fn claim_instance(&self) -> Result<String, StoreError> {
        let meta = self.cf(CF_META)?;
        if let Some(stored) = self
            .db
            .get_cf(meta, META_INSTANCE)
            .map_err(|e| self.rocks(e))?
        {
            return Ok(String::from_utf8_lossy(&stored).into_owned());
        }
        let id = format!("inst_{:016x}", rand::random::<u64>());
        self.db
            .put_cf(meta, META_INSTANCE, id.as_bytes())
            .map_err(|e| self.rocks(e))?;
        Ok(id)
    }

    /// This directory's instance id (`inst_…`), stable across restarts.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    fn claim_topic(&self, topic: &str) -> Result<(), StoreError> {
        let meta = self.cf(CF_META)?;
        match self
            .db
            .get_cf(meta, META_TOPIC)
            .map_err(|e| self.rocks(e))?
        {
            Some(stored) if stored == topic.as_bytes() => Ok(()),
            Some(stored) => Err(StoreError::TopicMismatch {
                path: self.path.clone(),
                stored: String::from_utf8_lossy(&stored).into_owned(),
                requested: topic.to_owned(),
            }),
            None => self
                .db
                .put_cf(meta, META_TOPIC, topic.as_bytes())
                .map_err(|e| self.rocks(e)),
        }
    }

    fn read_count(&self) -> Result<u64, StoreError> {
        let meta = self.cf(CF_META)?;
        match self
            .db
            .get_cf(meta, META_COUNT)
            .map_err(|e| self.rocks(e))?
        {
            None => Ok(0),
            Some(v) => v
                .as_slice()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    cf: CF_META,
                    key: "count".into(),
                }),
        }
    }

    /// The topic this table materializes.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The directory of this table.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of endpoints stored (exact).
    pub fn len(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies consumed records in order, with their offsets, in one atomic write: after a
    /// crash the table and its offsets agree, so a restart resumes exactly where the data is.
    pub fn apply(&self, batch: &[Change]) -> Result<ApplyStats, StoreError> {
        let _serialized = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let endpoints = self.cf(CF_ENDPOINTS)?;
        let by_account = self.cf(CF_BY_ACCOUNT)?;
        let offsets = self.cf(CF_OFFSETS)?;
        let statuses = self.cf(CF_STATUS)?;
        let outbox = self.cf(CF_OUTBOX)?;

        // What is stored now for every id in the batch, updated as the batch proceeds so a
        // batch holding several changes of one endpoint is judged in order.
        let mut current = self.heads_of(batch)?;
        let mut current_status = self.statuses_of(batch)?;
        // Endpoints upserted or deleted earlier in this batch, for the notices.
        let mut written: HashMap<EndpointId, Option<&Endpoint>> = HashMap::new();
        let mut stats = ApplyStats::default();
        let mut count = self.count.load(Ordering::Relaxed);
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut wb = WriteBatch::default();

        for change in batch {
            let next = next_offsets.entry(change.partition).or_insert(0);
            *next = (*next).max(change.offset.saturating_add(1));
            match &change.op {
                None => stats.skipped += 1,
                Some(Op::Upsert(ep)) => {
                    let slot = current.entry(ep.id.clone()).or_insert(None);
                    if let Some(head) = slot {
                        // The first record of a version wins: a later write of the same
                        // version (two instances disabling one endpoint at once, or a
                        // replayed record) changes nothing, in every instance alike.
                        if ep.version <= head.version {
                            stats.stale += 1;
                            continue;
                        }
                        if head.account_id != ep.account_id {
                            wb.delete_cf(by_account, account_key(&head.account_id, &ep.id));
                        }
                    } else {
                        count += 1;
                    }
                    let stored = encode_stored(ep)?;
                    wb.put_cf(by_account, account_key(&ep.account_id, &ep.id), &stored);
                    wb.put_cf(endpoints, ep.id.as_str(), stored);
                    written.insert(ep.id.clone(), Some(ep));
                    *slot = Some(StoredHead {
                        version: ep.version,
                        account_id: ep.account_id.clone(),
                    });
                    stats.upserted += 1;
                }
                Some(Op::Delete(id)) => {
                    if let Some(head) = current.get_mut(id).and_then(Option::take) {
                        wb.delete_cf(endpoints, id.as_str());
                        wb.delete_cf(by_account, account_key(&head.account_id, id));
                        count = count.saturating_sub(1);
                        stats.deleted += 1;
                        written.insert(id.clone(), None);
                    }
                }
                Some(Op::Status(status)) => {
                    let slot = current_status
                        .entry(status.endpoint_id.clone())
                        .or_insert(None);
                    if slot
                        .as_ref()
                        .is_some_and(|stored| stored.supersedes(status))
                    {
                        stats.stale += 1;
                        continue;
                    }
                    wb.put_cf(
                        statuses,
                        status.endpoint_id.as_str(),
                        encode_json(&status.endpoint_id, status.as_ref())?,
                    );
                    stats.statuses += 1;
                    if !status.enabled && status.by.as_deref() == Some(self.instance.as_str()) {
                        // Our disabling won (it is the first of its epoch): we owe the owner
                        // a notice, unless the endpoint is gone.
                        let endpoint = match written.get(&status.endpoint_id) {
                            Some(endpoint) => endpoint.cloned(),
                            None => self.get_config(&status.endpoint_id)?,
                        };
                        if let Some(endpoint) = endpoint {
                            let notice = notice_for(&endpoint, status);
                            let bytes = notice.to_avro().map_err(|source| StoreError::Notice {
                                id: status.endpoint_id.clone(),
                                source: Box::new(source),
                            })?;
                            wb.put_cf(outbox, notice.id.as_bytes(), bytes);
                            stats.notices += 1;
                        }
                    }
                    *slot = Some((**status).clone());
                }
                Some(Op::DeleteStatus(id)) => {
                    if current_status.get_mut(id).and_then(Option::take).is_some() {
                        wb.delete_cf(statuses, id.as_str());
                        stats.statuses += 1;
                    }
                }
            }
        }
        for (partition, next) in &next_offsets {
            wb.put_cf(offsets, partition.to_be_bytes(), next.to_be_bytes());
        }
        wb.put_cf(self.cf(CF_META)?, META_COUNT, count.to_be_bytes());
        self.db.write(wb).map_err(|e| self.rocks(e))?;
        self.count.store(count, Ordering::Relaxed);
        Ok(stats)
    }

    /// The stored version and account of every endpoint the batch touches.
    fn heads_of(
        &self,
        batch: &[Change],
    ) -> Result<HashMap<EndpointId, Option<StoredHead>>, StoreError> {
        let mut ids: Vec<&EndpointId> = batch
            .iter()
            .filter_map(|c| match &c.op {
                Some(Op::Upsert(ep)) => Some(&ep.id),
                Some(Op::Delete(id)) => Some(id),
                Some(Op::Status(_) | Op::DeleteStatus(_)) | None => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let endpoints = self.cf(CF_ENDPOINTS)?;
        let values = self.db.batched_multi_get_cf(
            endpoints,
            ids.iter().map(|id| id.as_str().as_bytes()),
            true,
        );
        let mut heads = HashMap::with_capacity(ids.len());
        for (id, value) in ids.into_iter().zip(values) {
            let head = match value.map_err(|e| self.rocks(e))? {
                None => None,
                Some(bytes) => Some(decode_stored::<StoredHead>(id.as_str(), &bytes)?),
            };
            heads.insert(id.clone(), head);
        }
        Ok(heads)
    }

    /// The stored status of every endpoint whose status the batch touches.
    fn statuses_of(
        &self,
        batch: &[Change],
    ) -> Result<HashMap<EndpointId, Option<EndpointStatus>>, StoreError> {
        let mut out = HashMap::new();
        for change in batch {
            let id = match &change.op {
                Some(Op::Status(s)) => &s.endpoint_id,
                Some(Op::DeleteStatus(id)) => id,
                _ => continue,
            };
            if !out.contains_key(id) {
                out.insert(id.clone(), self.status(id)?);
            }
        }
        Ok(out)
    }

    /// One endpoint by id, with its breaker status.
    pub fn get(&self, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
        let Some(mut endpoint) = self.get_config(id)? else {
            return Ok(None);
        };
        endpoint.status = self.status(id)?;
        Ok(Some(endpoint))
    }

    /// One endpoint record by id, without its status.
    fn get_config(&self, id: &EndpointId) -> Result<Option<Endpoint>, StoreError> {
        let endpoints = self.cf(CF_ENDPOINTS)?;
        match self
            .db
            .get_pinned_cf(endpoints, id.as_str())
            .map_err(|e| self.rocks(e))?
        {
            None => Ok(None),
            Some(bytes) => decode_stored(id.as_str(), &bytes).map(Some),
        }
    }

    /// The breaker status record of an endpoint, if it has one. A status may exist for an
    /// endpoint that does not (written after its deletion): it is inert.
    pub fn status(&self, id: &EndpointId) -> Result<Option<EndpointStatus>, StoreError> {
        let cf = self.cf(CF_STATUS)?;
        match self
            .db
            .get_pinned_cf(cf, id.as_str())
            .map_err(|e| self.rocks(e))?
        {
            None => Ok(None),
            Some(bytes) => decode_stored(id.as_str(), &bytes).map(Some),
        }
    }

    /// Notices this instance owes, oldest id first: `(notice id, Avro EndpointNotification)`.
    pub fn pending_notices(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let cf = self.cf(CF_OUTBOX)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.rocks(e))?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.into_vec()));
        }
        Ok(out)
    }

    /// Forgets a notice once it is written to the notifications topic.
    pub fn remove_notice(&self, id: &str) -> Result<(), StoreError> {
        let cf = self.cf(CF_OUTBOX)?;
        self.db
            .delete_cf(cf, id.as_bytes())
            .map_err(|e| self.rocks(e))
    }

    /// Every endpoint of an account, enabled or not, ordered by endpoint id.
    pub fn endpoints_of_account(&self, account: &AccountId) -> Result<Vec<Endpoint>, StoreError> {
        let by_account = self.cf(CF_BY_ACCOUNT)?;
        let mut prefix = Vec::with_capacity(account.as_str().len() + 1);
        prefix.extend_from_slice(account.as_str().as_bytes());
        prefix.push(0);
        // Keys of the account are exactly those in [account\0, account\x01).
        let mut upper = prefix.clone();
        if let Some(last) = upper.last_mut() {
            *last = 1;
        }
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(upper);
        let mut it = self.db.raw_iterator_cf_opt(by_account, opts);
        it.seek(&prefix);
        let mut out = Vec::new();
        while let Some((key, value)) = it.item() {
            let id = key.get(prefix.len()..).unwrap_or_default();
            out.push(decode_stored::<Endpoint>(
                &String::from_utf8_lossy(id),
                value,
            )?);
            it.next();
        }
        it.status().map_err(|e| self.rocks(e))?;
        let cf = self.cf(CF_STATUS)?;
        let statuses =
            self.db
                .batched_multi_get_cf(cf, out.iter().map(|e| e.id.as_str().as_bytes()), true);
        for (endpoint, status) in out.iter_mut().zip(statuses) {
            if let Some(bytes) = status.map_err(|e| self.rocks(e))? {
                endpoint.status = Some(decode_stored(endpoint.id.as_str(), &bytes)?);
            }
        }
        Ok(out)
    }

    /// Writes the memtables to table files: lookups then use bloom filters and the block
    /// cache instead of the memtable skiplist, and the next open replays no log. Called when
    /// the table caught up and when its follower stops.
    pub fn flush(&self) -> Result<(), StoreError> {
        let cfs = [
            self.cf(CF_ENDPOINTS)?,
            self.cf(CF_BY_ACCOUNT)?,
            self.cf(CF_OFFSETS)?,
            self.cf(CF_META)?,
            self.cf(CF_STATUS)?,
            self.cf(CF_OUTBOX)?,
        ];
        self.db
            .flush_cfs_opt(&cfs, &FlushOptions::default())
            .map_err(|e| self.rocks(e))
    }

    /// The next offset to read per partition, as last applied.
    pub fn offsets(&self) -> Result<BTreeMap<i32, i64>, StoreError> {
        let offsets = self.cf(CF_OFFSETS)?;
        let mut out = BTreeMap::new();
        for item in self.db.iterator_cf(offsets, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.rocks(e))?;
            let corrupt = || StoreError::Corrupt {
                cf: CF_OFFSETS,
                key: format!("{k:?}"),
            };
            let partition = i32::from_be_bytes(k.as_ref().try_into().map_err(|_| corrupt())?);
            let next = i64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt())?);
            out.insert(partition, next);
        }
        Ok(out)
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

/// Endpoints are read by id: a bloom filter answers "not here" without touching a block,
/// and index and filter blocks live in the shared cache.
fn point_lookup_options(cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    // Index and filter blocks stay in the table readers, outside the block cache: they are
    // small (about 1.5 MB each per million endpoints), and when the cache held them, a table
    // larger than the cache kept evicting and re-reading them (2.7k gets/s at 1M endpoints
    // instead of 50k+).
    table.set_cache_index_and_filter_blocks(false);
    // A hash index inside each data block turns the in-block binary search into one probe.
    table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
    table.set_data_block_hash_ratio(0.75);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    // A bloom filter over the memtable too: during bootstrap every version check is a miss.
    opts.set_memtable_prefix_bloom_ratio(0.1);
    opts.set_memtable_whole_key_filtering(true);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Lz4);
    opts
}

/// The account index is only range-scanned, where whole-key bloom filters do not help.
fn scan_options(cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(false);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_bottommost_compression_type(DBCompressionType::Lz4);
    opts
}

fn account_key(account: &AccountId, id: &EndpointId) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.as_str().len() + 1 + id.as_str().len());
    key.extend_from_slice(account.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_str().as_bytes());
    key
}

/// The `endpoint.disabled` notice for the owner of `endpoint`, disabled by `status`.
fn notice_for(endpoint: &Endpoint, status: &EndpointStatus) -> EndpointNotification {
    EndpointNotification {
        id: notice_id(&status.endpoint_id, status.epoch),
        kind: ENDPOINT_DISABLED.to_owned(),
        endpoint_id: status.endpoint_id.to_string(),
        account_id: endpoint.account_id.to_string(),
        url: endpoint.url.to_string(),
        reason: status.reason.clone().unwrap_or_default(),
        disabled_at_ms: status.at_ms,
        last_status: status.last_status,
        last_error: status.last_error.clone(),
    }
}

fn encode_json<T: serde::Serialize>(id: &EndpointId, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(256);
    out.push(FORMAT_JSON);
    serde_json::to_writer(&mut out, value).map_err(|source| StoreError::Serialize {
        id: id.clone(),
        source,
    })?;
    Ok(out)
}

fn encode_stored(endpoint: &Endpoint) -> Result<Vec<u8>, StoreError> {
    encode_json(&endpoint.id, endpoint)
}

fn decode_stored<T: for<'de> Deserialize<'de>>(id: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_JSON, json)) => {
            serde_json::from_slice(json).map_err(|source| StoreError::CorruptEndpoint {
                id: id.to_owned(),
                source,
            })
        }
        _ => Err(StoreError::Corrupt {
            cf: CF_ENDPOINTS,
            key: id.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscriptions::endpoint::tests::endpoint;

    fn upsert(partition: i32, offset: i64, ep: Endpoint) -> Change {
        Change {
            partition,
            offset,
            op: Some(Op::Upsert(Box::new(ep))),
        }
    }

    fn delete(partition: i32, offset: i64, id: &str) -> Change {
        Change {
            partition,
            offset,
            op: Some(Op::Delete(EndpointId::from(id))),
        }
    }

    fn versioned(id: &str, account: &str, version: i64) -> Endpoint {
        let mut e = endpoint(id, account);
        e.version = version;
        e
    }

    fn ids(eps: &[Endpoint]) -> Vec<&str> {
        eps.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn apply_stores_endpoints_and_offsets_and_reopen_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), "subs").unwrap();
            let stats = store
                .apply(&[
                    upsert(0, 0, endpoint("ep_1", "acct_a")),
                    upsert(1, 0, endpoint("ep_2", "acct_a")),
                    upsert(0, 1, endpoint("ep_3", "acct_b")),
                    Change {
                        partition: 2,
                        offset: 7,
                        op: None,
                    },
                ])
                .unwrap();
            assert_eq!(
                stats,
                ApplyStats {
                    upserted: 3,
                    skipped: 1,
                    ..Default::default()
                }
            );
            assert_eq!(store.len(), 3);
        }
        let store = Store::open(dir.path(), "subs").unwrap();
        assert_eq!(store.len(), 3, "the count survives a reopen");
        assert_eq!(
            store.offsets().unwrap(),
            BTreeMap::from([(0, 2), (1, 1), (2, 8)])
        );
        assert_eq!(
            store.get(&EndpointId::from("ep_3")).unwrap(),
            Some(endpoint("ep_3", "acct_b"))
        );
        assert_eq!(
            ids(&store
                .endpoints_of_account(&AccountId::from("acct_a"))
                .unwrap()),
            ["ep_1", "ep_2"]
        );
    }

    #[test]
    fn refuses_a_directory_of_another_topic() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), "subs-a").unwrap());
        let err = Store::open(dir.path(), "subs-b").unwrap_err();
        assert!(matches!(err, StoreError::TopicMismatch { .. }), "{err}");
        assert!(err.to_string().contains("subs-a"));
    }

    #[test]
    fn a_lower_version_never_overwrites_even_within_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "subs").unwrap();
        store
            .apply(&[upsert(0, 0, versioned("ep_1", "a", 5))])
            .unwrap();
        let mut stale = versioned("ep_1", "a", 4);
        stale.url = url::Url::parse("https://stale.example.com/").unwrap();
        let stats = store
            .apply(&[
                upsert(0, 1, stale.clone()),
                upsert(0, 2, versioned("ep_1", "a", 6)),
                upsert(0, 3, stale),
            ])
            .unwrap();
        assert_eq!((stats.upserted, stats.stale), (1, 2));
        let got = store.get(&EndpointId::from("ep_1")).unwrap().unwrap();
        assert_eq!(got.version, 6);
        assert_eq!(got.url.as_str(), "https://example.com/hooks");
        assert_eq!(
            store.endpoints_of_account(&AccountId::from("a")).unwrap(),
            vec![got],
            "the account index carries the same, current endpoint"
        );
        assert_eq!(
            store.offsets().unwrap()[&0],
            4,
            "stale records still advance"
        );
    }

    #[test]
    fn the_first_record_of_a_version_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "subs").unwrap();
        let first = versioned("ep_1", "a", 3);
        store.apply(&[upsert(0, 0, first.clone())]).unwrap();
        let mut same = versioned("ep_1", "a", 3);
        same.enabled = false;
        let stats = store.apply(&[upsert(0, 1, same.clone())]).unwrap();
        assert_eq!(stats.stale, 1);
        assert_eq!(store.get(&same.id).unwrap(), Some(first.clone()));
        assert_eq!(
            store.endpoints_of_account(&AccountId::from("a")).unwrap(),
            vec![first]
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_tombstone_deletes_the_endpoint_and_its_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "subs").unwrap();
        store
            .apply(&[
                upsert(0, 0, endpoint("ep_1", "a")),
                upsert(0, 1, endpoint("ep_2", "a")),
            ])
            .unwrap();
        let stats = store
            .apply(&[delete(0, 2, "ep_1"), delete(0, 3, "ep_unknown")])
            .unwrap();
        assert_eq!(stats.deleted, 1);
        assert_eq!(store.get(&EndpointId::from("ep_1")).unwrap(), None);
        assert_eq!(
            ids(&store.endpoints_of_account(&AccountId::from("a")).unwrap()),
            ["ep_2"]
        );
        assert_eq!(store.len(), 1);
        // After a delete, any version may recreate it.
        store
            .apply(&[upsert(0, 4, versioned("ep_1", "a", 0))])
            .unwrap();
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn delete_then_recreate_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "subs").unwrap();
        store
            .apply(&[upsert(0, 0, versioned("ep_1", "a", 9))])
            .unwrap();
        store
            .apply(&[
                delete(0, 1, "ep_1"),
                upsert(0, 2, versioned("ep_1", "b", 1)),
            ])
            .unwrap();
        assert_eq!(
            store
                .get(&EndpointId::from("ep_1"))
                .unwrap()
                .unwrap()
                .version,
            1
        );
        assert!(
            store
                .endpoints_of_account(&AccountId::from("a"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn an_account_change_moves_the_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "subs").unwrap();
        store
            .apply(&[upsert(0, 0, versioned("ep_1", "a", 1))])
            .unwrap();
        store
            .apply(&[upsert(0, 1, versioned("ep_1", "b", 2))])
            .unwrap();
        assert!(
            store
                .endpoints_of_account(&AccountId::from("a"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ids(&store.endpoints_of_account(&AccountId::from("b")).unwrap()),
            ["ep_1"]
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn account_scans_do_not_spill_into_accounts_sharing_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), "subs").unwrap();
        store
            .apply(&[
                upsert(0, 0, endpoint("ep_1", "acct")),
                upsert(0, 1, endpoint("ep_2", "acct_1")),
                upsert(0, 2, endpoint("ep_3", "acc")),
            ])
            .unwrap();
        assert_eq!(
            ids(&store
                .endpoints_of_account(&AccountId::from("acct"))
                .unwrap()),
            ["ep_1"]
        );
        assert!(
            store
                .endpoints_of_account(&AccountId::from("ac"))
                .unwrap()
                .is_empty()
        );
    }
}
