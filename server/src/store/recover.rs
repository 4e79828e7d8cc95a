//! Opening a data directory at start-up (docs/PROTOCOL.md section 10.4): check every segment's
//! header, start at the newest snapshot, replay every record, cut a torn tail off the newest
//! segment, and refuse (unless salvaging) corruption anywhere else, saying where and what it is.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use log::{info, warn};

use super::scan::{self, Damage};
use super::segment::{self, HEADER_LEN, Header, HeaderError};
use super::state::{Replay, State};

/// A data directory that cannot be opened as it is.
#[derive(Debug)]
pub enum OpenError {
    /// An I/O error, with what was being done.
    Io(String, io::Error),
    /// Another server has the directory open.
    Locked(PathBuf),
    /// A segment's header is not one this server reads (another version, or not a segment).
    Header(PathBuf, HeaderError),
    /// Corruption in the middle of the log: valid records follow bad bytes.
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// The bad bytes, at offsets in the file.
        damage: Damage,
        /// Whether it is the newest segment.
        last: bool,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(what, e) => write!(f, "{what}: {e}"),
            Self::Locked(dir) => write!(
                f,
                "the data directory {} is in use by another server",
                dir.display()
            ),
            Self::Header(path, e) => write!(f, "{}: {e}", path.display()),
            Self::Corrupt { path, damage, last } => write!(
                f,
                "{}: corrupt record at offset {} ({}): {} bytes {} would be lost; start with \
                 --salvage true to drop them and keep the rest",
                path.display(),
                damage.at,
                damage.fault,
                damage.len,
                if *last {
                    "with valid records after them"
                } else {
                    "in a segment that is not the newest"
                },
            ),
        }
    }
}

impl std::error::Error for OpenError {}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> Self {
        let kind = match &e {
            OpenError::Io(_, e) => e.kind(),
            OpenError::Locked(_) => io::ErrorKind::AddrInUse,
            OpenError::Header(..) | OpenError::Corrupt { .. } => io::ErrorKind::InvalidData,
        };
        Self::new(kind, e.to_string())
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> OpenError {
    let what = what.into();
    move |e| OpenError::Io(what, e)
}

/// What recovery found, for the log and for `sys.stats`.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Segments read.
    pub segments: usize,
    /// Records replayed.
    pub records: usize,
    /// Bytes of the segments read.
    pub bytes: u64,
    /// A torn tail cut off the newest segment: the segment and the bytes dropped.
    pub torn: Option<(PathBuf, Damage)>,
    /// Corruption dropped by salvaging.
    pub salvaged: Vec<(PathBuf, Damage)>,
    /// Segments left over from a compaction cut short, removed.
    pub leftovers: usize,
    /// How long recovery took.
    pub elapsed: Duration,
}

/// The opened directory: its state, the segment to append to, and what recovery found.
#[derive(Debug)]
pub struct Opened {
    /// What the records add up to.
    pub state: State,
    /// The newest segment, open for appending after its last good record.
    pub current: File,
    /// Its number.
    pub number: u64,
    /// The numbers of the segments before it, oldest first.
    pub older: Vec<u64>,
    /// Its length.
    pub current_len: u64,
    /// Bytes of every segment kept.
    pub disk_bytes: u64,
    /// What recovery found.
    pub report: Report,
    /// The key that signs session tokens, kept in the directory so that a client's token still
    /// resumes its session after a restart.
    pub session_key: [u8; 16],
    /// The directory's lock, held while the server runs.
    pub lock: File,
}

/// Opens `dir` (creating it when missing), recovering its state.
///
/// # Errors
/// An [`OpenError`]: the directory cannot be read or written, another server holds it, a segment
/// is of another version, or (unless `salvage`) records are corrupt in the middle.
pub fn open(dir: &Path, max_record_len: u32, salvage: bool) -> Result<Opened, OpenError> {
    let started = Instant::now();
    fs::create_dir_all(dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
    let lock = lock(dir)?;
    let session_key = session_key(dir)?;
    let mut report = Report::default();
    let kept = segments_to_read(dir, &mut report)?;
    let mut replay = Replay::default();
    let mut disk_bytes = 0;
    let mut current = None;
    for (i, &n) in kept.iter().enumerate() {
        let last = i + 1 == kept.len();
        let (file, good) = read_segment(
            dir,
            n,
            last,
            max_record_len,
            salvage,
            &mut replay,
            &mut report,
        )?;
        disk_bytes += good;
        if let Some(file) = file {
            current = Some((file, n, good));
        }
    }
    let (current, number, current_len) = if let Some(c) = current {
        c
    } else {
        let (file, len) = create_segment(dir, 1, false)?;
        disk_bytes += len;
        (file, 1, len)
    };
    report.elapsed = started.elapsed();
    let state = replay.finish();
    info!(
        "data directory {}: {} records in {} segments ({} bytes) read in {:.1} ms: {} queued \
         messages in {} queues, {} retained messages, {} sessions",
        dir.display(),
        report.records,
        report.segments,
        report.bytes,
        report.elapsed.as_secs_f64() * 1e3,
        state.messages(),
        state.queues.len(),
        state.retained.len(),
        state.sessions.len()
    );
    let older = kept.iter().copied().filter(|&n| n < number).collect();
    Ok(Opened {
        state,
        current,
        number,
        older,
        current_len,
        disk_bytes,
        report,
        session_key,
        lock,
    })
}

/// The file that holds the session-token key.
pub const SESSION_KEY_FILE: &str = "session.key";

/// The directory's session-token key, made (random, readable by the owner only) the first time.
fn session_key(dir: &Path) -> Result<[u8; 16], OpenError> {
    let path = dir.join(SESSION_KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            return bytes.try_into().map_err(|bytes: Vec<u8>| {
                OpenError::Io(
                    format!("{} is not a session key", path.display()),
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} bytes, not 16", bytes.len()),
                    ),
                )
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(OpenError::Io(format!("cannot read {}", path.display()), e)),
    }
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| {
        OpenError::Io(
            "no random bytes for the session key".into(),
            io::Error::other(e.to_string()),
        )
    })?;
    let new = dir.join("session.key.new");
    let _ = fs::remove_file(&new);
    write_new(&new, &key)?;
    fs::rename(&new, &path).map_err(io_err(format!("cannot create {}", path.display())))?;
    sync_dir(dir)?;
    Ok(key)
}

/// Takes the directory's lock, so that two servers never write one log.
fn lock(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("cannot open {}", path.display())))?;
    if lock.try_lock().is_err() {
        return Err(OpenError::Locked(dir.to_path_buf()));
    }
    Ok(lock)
}

/// The segments to replay, oldest first: every header checked (a directory of another version is
/// refused before anything is touched), starting at the newest snapshot. Leftovers of a compaction
/// cut short (older segments, a temporary snapshot) and a newest segment whose header was never
/// finished are removed.
fn segments_to_read(dir: &Path, report: &mut Report) -> Result<Vec<u64>, OpenError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(format!("cannot read {}", dir.display())))? {
        let entry = entry.map_err(io_err(format!("cannot read {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = segment::number_of(name) {
            numbers.push(n);
        } else if Path::new(name)
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("tmp"))
        {
            fs::remove_file(entry.path()).map_err(io_err(format!("cannot remove {name}")))?;
        }
    }
    numbers.sort_unstable();
    let mut headers = Vec::with_capacity(numbers.len());
    for (i, &n) in numbers.iter().enumerate() {
        let path = segment::path(dir, n);
        let bytes = read_prefix(&path, HEADER_LEN)?;
        match Header::parse(&bytes) {
            Ok(h) => headers.push((n, h)),
            Err(HeaderError::Short(_)) if i + 1 == numbers.len() => {
                warn!(
                    "{}: a segment whose header was never finished, removed",
                    path.display()
                );
                remove(&path)?;
            }
            Err(e) => return Err(OpenError::Header(path, e)),
        }
    }
    let start = headers.iter().rposition(|(_, h)| h.snapshot).unwrap_or(0);
    for &(n, _) in &headers[..start] {
        remove(&segment::path(dir, n))?;
        report.leftovers += 1;
    }
    Ok(headers[start..].iter().map(|&(n, _)| n).collect())
}

fn remove(path: &Path) -> Result<(), OpenError> {
    fs::remove_file(path).map_err(io_err(format!("cannot remove {}", path.display())))
}

/// Replays segment `n`; returns its good length and, for the newest (`last`), the file open for
/// appending, cut back to its last good record.
#[allow(clippy::too_many_arguments)]
fn read_segment(
    dir: &Path,
    n: u64,
    last: bool,
    max_record_len: u32,
    salvage: bool,
    replay: &mut Replay,
    report: &mut Report,
) -> Result<(Option<File>, u64), OpenError> {
    let path = segment::path(dir, n);
    let bytes = fs::read(&path).map_err(io_err(format!("cannot read {}", path.display())))?;
    report.segments += 1;
    report.bytes += bytes.len() as u64;
    let body = &bytes[HEADER_LEN..];
    let scanned = scan::scan(body, max_record_len, salvage).map_err(|c| OpenError::Corrupt {
        path: path.clone(),
        damage: in_file(c.damage),
        last,
    })?;
    for d in scanned.salvaged {
        let d = in_file(d);
        warn!(
            "{}: salvaged: dropped {} corrupt bytes at offset {} ({})",
            path.display(),
            d.len,
            d.at,
            d.fault
        );
        report.salvaged.push((path.clone(), d));
    }
    let good = (HEADER_LEN + scanned.end) as u64;
    if let Some(tail) = scanned.tail {
        let tail = in_file(tail);
        if !last && !salvage {
            // Only the newest segment may end in an unfinished write: the others were synced
            // whole before the next was begun.
            return Err(OpenError::Corrupt {
                path,
                damage: tail,
                last,
            });
        }
        warn!(
            "{}: torn tail cut at offset {}: {} bytes dropped ({}); with fsync \"always\" none of \
             them was confirmed",
            path.display(),
            tail.at,
            tail.len,
            tail.fault
        );
        report.torn = Some((path.clone(), tail));
    }
    report.records += scanned.records.len();
    for record in scanned.records {
        replay.apply(record);
    }
    if !last {
        return Ok((None, good));
    }
    let file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io_err(format!("cannot open {}", path.display())))?;
    if good < bytes.len() as u64 {
        file.set_len(good)
            .and_then(|()| file.sync_all())
            .map_err(io_err(format!("cannot cut {}", path.display())))?;
    }
    Ok((Some(file), good))
}

/// A damage's offsets in the file, past the header.
fn in_file(d: Damage) -> Damage {
    Damage {
        at: d.at + HEADER_LEN,
        ..d
    }
}

fn read_prefix(path: &Path, n: usize) -> Result<Vec<u8>, OpenError> {
    use std::io::Read;
    let file = File::open(path).map_err(io_err(format!("cannot open {}", path.display())))?;
    let mut out = Vec::with_capacity(n);
    file.take(n as u64)
        .read_to_end(&mut out)
        .map_err(io_err(format!("cannot read {}", path.display())))?;
    Ok(out)
}

/// Creates segment `number` with its header, synced along with the directory entry; returns the
/// file, open for appending, and its length.
///
/// # Errors
/// The file cannot be created, written or synced.
pub fn create_segment(dir: &Path, number: u64, snapshot: bool) -> Result<(File, u64), OpenError> {
    let path = segment::path(dir, number);
    let header = Header {
        version: segment::FORMAT_VERSION,
        snapshot,
    }
    .encode();
    let file = write_new(&path, &header)?;
    sync_dir(dir)?;
    Ok((file, HEADER_LEN as u64))
}

/// Creates `path` holding `bytes`, synced.
fn write_new(path: &Path, bytes: &[u8]) -> Result<File, OpenError> {
    use std::io::Write;
    let mut options = OpenOptions::new();
    options.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(io_err(format!("cannot create {}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(format!("cannot write {}", path.display())))?;
    Ok(file)
}

/// Syncs a directory, so the files created or renamed in it survive a power cut.
///
/// # Errors
/// It cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> Result<(), OpenError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("cannot sync {}", dir.display())))
}
