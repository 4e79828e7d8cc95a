//! The log's writer thread: it takes every record the hub appended since its last write, writes
//! them in one go, syncs per the policy (one fsync for every record that arrived while the last
//! one ran: group commit), and then says how far the log is durable. It also rolls segments and
//! writes snapshots (compaction), so no file I/O ever happens under the hub's lock.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{error, info};

use super::record::Record;
use super::recover::{self, OpenError};
use super::segment::{self, HEADER_LEN};
use super::{FsyncPolicy, Inner, Op, Pending, unpoisoned};

/// The segment being appended to.
#[derive(Debug)]
pub(super) struct Current {
    pub(super) file: File,
    pub(super) number: u64,
    pub(super) len: u64,
}

#[derive(Debug)]
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) inner: Arc<Inner>,
    pub(super) current: Current,
    /// Bytes of every segment on disk.
    pub(super) disk_bytes: u64,
    pub(super) policy: FsyncPolicy,
    pub(super) segment_bytes: u64,
    /// Whether bytes were written since the last sync, and when that sync was.
    pub(super) unsynced: bool,
    pub(super) synced_at: Instant,
    /// Older segments, oldest first (removed after a snapshot).
    pub(super) older: Vec<u64>,
    /// How the last synced batch went, for the next one's gathering.
    pub(super) gather: Gather,
}

/// Group commit's gathering under `fsync = always`. When a sync ends, the clients it confirmed
/// send their next records a round trip later; a writer that synced at once would sync only
/// the few that came first and make the rest wait a whole sync more, so batches would alternate
/// small and large. So the writer waits, after the first record, until as many records are
/// pending as the last batch had, or half the last sync's time has passed (at most
/// [`MAX_GATHER`]): with one record in flight per client the batches settle at one record per
/// client. The append that brings the pending records to that number wakes the writer (the
/// others do not: a writer woken per record would take the core from the loop that reads them).
/// A lone client (a batch of one) never waits.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Gather {
    /// Records in the last batch.
    pub(super) last_batch: usize,
    /// How long its sync took.
    pub(super) last_sync: Duration,
}

/// The longest a batch waits to gather records.
const MAX_GATHER: Duration = Duration::from_millis(1);

impl Gather {
    fn window(self) -> Duration {
        (self.last_sync / 2).min(MAX_GATHER)
    }
}

impl Writer {
    pub(super) fn run(mut self) {
        let mut buf = BytesMut::with_capacity(1 << 16);
        loop {
            let (ops, last, stop) = self.take();
            if let Err(e) = self.write(ops, &mut buf) {
                error!(
                    "the data directory {} cannot be written: {e}; durable operations are \
                     refused from now on",
                    self.dir.display()
                );
                self.inner.failed.store(true, Ordering::SeqCst);
                self.inner.notify();
                return;
            }
            self.inner.durable.store(last, Ordering::SeqCst);
            self.inner.notify();
            if stop {
                if self.unsynced
                    && let Err(e) = self.current.file.sync_data()
                {
                    error!("cannot sync {}: {e}", self.dir.display());
                }
                return;
            }
        }
    }

    /// Waits for records (or, with unsynced bytes under an interval policy, for the interval to
    /// end), then takes everything appended so far.
    fn take(&mut self) -> (Vec<Op>, u64, bool) {
        let mut pending = unpoisoned(self.inner.pending.lock());
        loop {
            if !pending.ops.is_empty() || pending.stop {
                break;
            }
            pending = match (self.policy, self.unsynced) {
                (FsyncPolicy::Interval(every), true) => {
                    let left = every.saturating_sub(self.synced_at.elapsed());
                    if left.is_zero() {
                        drop(pending);
                        self.sync_now();
                        unpoisoned(self.inner.pending.lock())
                    } else {
                        wait_timeout(&self.inner, pending, left)
                    }
                }
                _ => unpoisoned(self.inner.ready.wait(pending)),
            };
        }
        if self.policy == FsyncPolicy::Always && !pending.stop {
            let until = Instant::now() + self.gather.window();
            pending.gather_target = self.gather.last_batch;
            while pending.ops.len() < self.gather.last_batch && !pending.stop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                pending = wait_timeout(&self.inner, pending, left);
            }
            pending.gather_target = 0;
        }
        let ops = std::mem::take(&mut pending.ops);
        self.gather.last_batch = ops.len();
        (ops, pending.last, pending.stop)
    }

    fn sync_now(&mut self) {
        if let Err(e) = self.current.file.sync_data() {
            error!("cannot sync {}: {e}", self.dir.display());
        }
        self.unsynced = false;
        self.synced_at = Instant::now();
    }

    /// Writes one batch: appends in order, a snapshot where the hub asked for one.
    fn write(&mut self, ops: Vec<Op>, buf: &mut BytesMut) -> Result<(), OpenError> {
        for op in ops {
            match op {
                Op::Append(record) => encode(&record, buf),
                Op::Snapshot(records) => {
                    self.flush(buf)?;
                    self.snapshot(&records, buf)?;
                }
            }
            if self.current.len + buf.len() as u64 >= self.segment_bytes {
                self.flush(buf)?;
                self.roll()?;
            }
        }
        self.flush(buf)?;
        let sync = match self.policy {
            FsyncPolicy::Always => self.unsynced,
            FsyncPolicy::Interval(every) => self.unsynced && self.synced_at.elapsed() >= every,
            FsyncPolicy::Never => false,
        };
        if sync {
            let started = Instant::now();
            self.current
                .file
                .sync_data()
                .map_err(io(&self.current_path()))?;
            self.unsynced = false;
            self.synced_at = Instant::now();
            self.gather.last_sync = self.synced_at - started;
        }
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        segment::path(&self.dir, self.current.number)
    }

    fn flush(&mut self, buf: &mut BytesMut) -> Result<(), OpenError> {
        if buf.is_empty() {
            return Ok(());
        }
        self.current
            .file
            .write_all(buf)
            .map_err(io(&self.current_path()))?;
        self.current.len += buf.len() as u64;
        self.disk_bytes += buf.len() as u64;
        self.unsynced = true;
        buf.clear();
        Ok(())
    }

    /// Seals the current segment (synced, whatever the policy: only the newest segment may have
    /// a torn tail) and starts the next.
    fn roll(&mut self) -> Result<(), OpenError> {
        self.current
            .file
            .sync_data()
            .map_err(io(&self.current_path()))?;
        let number = self.current.number + 1;
        let (file, len) = recover::create_segment(&self.dir, number, false)?;
        self.older.push(self.current.number);
        self.current = Current { file, number, len };
        self.disk_bytes += len;
        self.inner
            .log_bytes
            .fetch_add(HEADER_LEN as u64, Ordering::SeqCst);
        self.unsynced = false;
        self.synced_at = Instant::now();
        Ok(())
    }

    /// Writes `records` (the whole state) as a new snapshot segment, then removes every segment
    /// before it. The snapshot is written under a temporary name and renamed when complete, so a
    /// crash leaves either the old segments or the new one whole.
    fn snapshot(&mut self, records: &[Record], buf: &mut BytesMut) -> Result<(), OpenError> {
        let started = Instant::now();
        self.current
            .file
            .sync_data()
            .map_err(io(&self.current_path()))?;
        let number = self.current.number + 1;
        let path = segment::path(&self.dir, number);
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        let header = segment::Header {
            version: segment::FORMAT_VERSION,
            snapshot: true,
        }
        .encode();
        file.write_all(&header).map_err(io(&tmp))?;
        let mut len = HEADER_LEN as u64;
        for chunk in records.chunks(4096) {
            for r in chunk {
                encode(r, buf);
            }
            file.write_all(buf).map_err(io(&tmp))?;
            len += buf.len() as u64;
            buf.clear();
        }
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        recover::sync_dir(&self.dir)?;
        let mut removed = 0;
        for n in std::mem::take(&mut self.older)
            .into_iter()
            .chain([self.current.number])
        {
            let old = segment::path(&self.dir, n);
            std::fs::remove_file(&old).map_err(io(&old))?;
            removed += 1;
        }
        let before = self.disk_bytes;
        self.current = Current { file, number, len };
        self.disk_bytes = len;
        // The log's size as the hub sees it: what is on disk now, plus what is still pending.
        self.inner.log_bytes.fetch_add(len, Ordering::SeqCst);
        self.inner.log_bytes.fetch_sub(before, Ordering::SeqCst);
        self.inner.compacting.store(false, Ordering::SeqCst);
        self.unsynced = false;
        self.synced_at = Instant::now();
        info!(
            "compacted {}: {} records ({len} bytes) replace {removed} segments ({before} bytes) \
             in {:.1} ms",
            self.dir.display(),
            records.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok(())
    }
}

fn wait_timeout<'a>(
    inner: &'a Inner,
    pending: MutexGuard<'a, Pending>,
    left: Duration,
) -> MutexGuard<'a, Pending> {
    match inner.ready.wait_timeout(pending, left) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

fn encode(record: &Record, buf: &mut BytesMut) {
    if let Err(e) = record.encode_into(buf) {
        // The hub checks names and payloads against the frame limits before it records them.
        error!("a record that cannot be encoded was not written: {e}");
    }
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpenError {
    let what = format!("cannot write {}", path.display());
    move |e| OpenError::Io(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gathers_for_half_the_last_sync_and_never_long() {
        let gather = |micros| Gather {
            last_batch: 16,
            last_sync: Duration::from_micros(micros),
        };
        assert_eq!(gather(300).window(), Duration::from_micros(150));
        assert_eq!(
            gather(0).window(),
            Duration::ZERO,
            "no sync yet: no waiting"
        );
        assert_eq!(
            gather(60_000).window(),
            MAX_GATHER,
            "a slow disk waits no longer"
        );
    }
}
