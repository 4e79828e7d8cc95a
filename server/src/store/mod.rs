//! The durable log (`--data-dir`): what the hub must not lose (queued messages with their
//! delivery counts, and retained messages) kept in an append-only log of CRC-checked records in a
//! data directory, replayed at start-up (docs/PROTOCOL.md section 10).
//!
//! The hub asks the log to record ([`Journal::append`], an in-memory push under the hub's lock)
//! and learns when a record is durable ([`Journal::durable`]): it holds the confirmation of an
//! operation (the OK Response of a `QueuePush`, a `QueueAck`, a retained `Publish`) until then. The
//! writer thread (`writer.rs`) does every write and fsync, for all the records that arrived since
//! its last one (group commit), and wakes the event loop when it is done, so the held
//! confirmations go out.
//!
//! What a confirmation promises follows the fsync policy: `always`, the record is on the disk
//! (it survives a power cut); `interval:MS`, it is in the operating system's hands (it survives
//! the server's crash or SIGKILL) and on the disk within MS; `never`, the same, and on the disk when
//! the operating system writes it.
//!
//! The log is a series of segments; when it holds more than twice what is live, the hub hands it
//! a snapshot of its state (compaction), which becomes the first segment, and the older ones go.

pub mod record;
pub mod recover;
pub mod scan;
pub mod segment;
pub mod session_record;
pub mod state;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use record::Record;
pub use recover::{OpenError, Report};
pub use session_record::{KeptMessage, SessionRecord};
pub use state::{State, StoredMessage, StoredRetained, StoredSession};

/// When the writer syncs what it wrote to the disk, and so what a confirmation promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every confirmation (records that arrive together share one sync).
    Always,
    /// At most this long after a write; confirmations wait for the write only.
    Interval(Duration),
    /// Never on purpose; confirmations wait for the write only.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            _ => {
                let ms = s
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        format!(
                            "fsync {s:?}: expected \"always\", \"interval:MS\" (MS > 0) or \"never\""
                        )
                    })?;
                Ok(Self::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Interval(d) => write!(f, "interval:{}", d.as_millis()),
            Self::Never => f.write_str("never"),
        }
    }
}

/// How a data directory is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The directory.
    pub dir: PathBuf,
    /// When to sync.
    pub fsync: FsyncPolicy,
    /// The most bytes the log may hold; a durable operation beyond is refused (`STORAGE_FULL`).
    pub max_disk_bytes: u64,
    /// A segment is sealed and the next begun past this size.
    pub segment_bytes: u64,
    /// The log is compacted when it holds more than this and more than twice what is live.
    pub compact_above_bytes: u64,
    /// Drop corrupt records in the middle of the log at start-up instead of refusing to start.
    pub salvage: bool,
    /// The longest record, after its length prefix.
    pub max_record_len: u32,
}

impl StoreConfig {
    /// The defaults for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: FsyncPolicy::Always,
            max_disk_bytes: 8 << 30,
            segment_bytes: 64 << 20,
            compact_above_bytes: 64 << 20,
            salvage: false,
            max_record_len: framewire_protocol::wire::MAX_FRAME_LEN_CEILING,
        }
    }
}

/// The log as the hub sees it: somewhere to append records, and how far they are durable.
pub trait Journal: Send + std::fmt::Debug {
    /// Appends a record (in memory: the writer thread writes it); returns its sequence number.
    fn append(&mut self, record: Record) -> u64;
    /// Every record up to this sequence number is durable.
    fn durable(&self) -> u64;
    /// The log cannot be written: records after [`Journal::durable`] never will be.
    fn failed(&self) -> bool;
    /// The bytes the log holds, on disk and waiting to be written.
    fn log_bytes(&self) -> u64;
    /// The most bytes the log may hold.
    fn max_bytes(&self) -> u64;
    /// Whether the log would like a snapshot now, given that `live_bytes` of it are live.
    fn wants_snapshot(&self, live_bytes: u64) -> bool;
    /// Replaces the log by `records`, the whole state after the last record appended.
    fn snapshot(&mut self, records: Vec<Record>);
}

#[derive(Debug)]
enum Op {
    Append(Record),
    Snapshot(Vec<Record>),
}

#[derive(Debug, Default)]
struct Pending {
    ops: Vec<Op>,
    /// The sequence number of the last record appended.
    last: u64,
    stop: bool,
    /// While the writer gathers a batch (writer.rs, `Gather`), the number of records it waits
    /// for: the append that makes it wakes the writer. 0: not gathering.
    gather_target: usize,
}

type Notify = Box<dyn Fn() + Send + Sync>;

/// What the hub's side and the writer share.
struct Inner {
    pending: Mutex<Pending>,
    ready: Condvar,
    durable: AtomicU64,
    failed: AtomicBool,
    log_bytes: AtomicU64,
    compacting: AtomicBool,
    notify: OnceLock<Notify>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("durable", &self.durable)
            .field("failed", &self.failed)
            .field("log_bytes", &self.log_bytes)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn notify(&self) {
        if let Some(n) = self.notify.get() {
            n();
        }
    }
}

fn unpoisoned<T>(r: std::sync::LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The durable log of one data directory, and its writer thread.
#[derive(Debug)]
pub struct Log {
    inner: Arc<Inner>,
    config: StoreConfig,
    writer: Option<JoinHandle<()>>,
    _lock: std::fs::File,
}

/// A data directory opened: its log, the state it held, and what recovery found.
#[derive(Debug)]
pub struct Opened {
    /// The log, ready to append to.
    pub log: Log,
    /// The state the directory held.
    pub state: State,
    /// What recovery found.
    pub report: Report,
    /// The key that signs session tokens, kept in the directory.
    pub session_key: [u8; 16],
}

impl Log {
    /// Opens (or creates) the data directory, recovers its state and starts the writer.
    ///
    /// # Errors
    /// As [`recover::open`], or the writer thread cannot be started.
    pub fn open(config: StoreConfig) -> Result<Opened, OpenError> {
        let opened = recover::open(&config.dir, config.max_record_len, config.salvage)?;
        let inner = Arc::new(Inner {
            pending: Mutex::new(Pending::default()),
            ready: Condvar::new(),
            durable: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            log_bytes: AtomicU64::new(opened.disk_bytes),
            compacting: AtomicBool::new(false),
            notify: OnceLock::new(),
        });
        let writer = writer::Writer {
            dir: config.dir.clone(),
            inner: Arc::clone(&inner),
            current: writer::Current {
                file: opened.current,
                number: opened.number,
                len: opened.current_len,
            },
            disk_bytes: opened.disk_bytes,
            policy: config.fsync,
            segment_bytes: config.segment_bytes,
            unsynced: false,
            synced_at: Instant::now(),
            older: opened.older,
            gather: writer::Gather::default(),
        };
        let thread = std::thread::Builder::new()
            .name("framewire-store".into())
            .spawn(move || writer.run())
            .map_err(|e| OpenError::Io("cannot start the store's writer".into(), e))?;
        Ok(Opened {
            log: Self {
                inner,
                config,
                writer: Some(thread),
                _lock: opened.lock,
            },
            state: opened.state,
            report: opened.report,
            session_key: opened.session_key,
        })
    }

    /// Has `notify` called (from the writer thread) each time records become durable, or the
    /// log fails. Set once; later calls are ignored.
    pub fn on_durable(&self, notify: impl Fn() + Send + Sync + 'static) {
        let _ = self.inner.notify.set(Box::new(notify));
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The fsync policy.
    pub fn policy(&self) -> FsyncPolicy {
        self.config.fsync
    }

    /// Writes and syncs everything appended, then stops the writer.
    pub fn close(&mut self) {
        unpoisoned(self.inner.pending.lock()).stop = true;
        self.inner.ready.notify_one();
        if let Some(t) = self.writer.take()
            && t.join().is_err()
        {
            log::error!("the store's writer thread panicked");
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}

impl Journal for Log {
    fn append(&mut self, record: Record) -> u64 {
        let len = record.encoded_len() as u64;
        let mut pending = unpoisoned(self.inner.pending.lock());
        pending.last += 1;
        let seq = pending.last;
        if self.failed() {
            // The writer has stopped: nothing will take the record, so it is not kept waiting in
            // memory either (its confirmation fails, as every one after the failure does).
            return seq;
        }
        let wake = pending.ops.is_empty() || pending.ops.len() + 1 == pending.gather_target;
        pending.ops.push(Op::Append(record));
        drop(pending);
        self.inner.log_bytes.fetch_add(len, Ordering::SeqCst);
        if wake {
            self.inner.ready.notify_one();
        }
        seq
    }

    fn durable(&self) -> u64 {
        self.inner.durable.load(Ordering::SeqCst)
    }

    fn failed(&self) -> bool {
        self.inner.failed.load(Ordering::SeqCst)
    }

    fn log_bytes(&self) -> u64 {
        self.inner.log_bytes.load(Ordering::SeqCst)
    }

    fn max_bytes(&self) -> u64 {
        self.config.max_disk_bytes
    }

    fn wants_snapshot(&self, live_bytes: u64) -> bool {
        let bytes = self.log_bytes();
        bytes > self.config.compact_above_bytes
            && bytes > live_bytes.saturating_mul(2)
            && !self.inner.compacting.load(Ordering::SeqCst)
    }

    fn snapshot(&mut self, records: Vec<Record>) {
        self.inner.compacting.store(true, Ordering::SeqCst);
        let mut pending = unpoisoned(self.inner.pending.lock());
        let wake = pending.ops.is_empty();
        pending.ops.push(Op::Snapshot(records));
        drop(pending);
        if wake {
            self.inner.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests;
