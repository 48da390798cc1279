//! The writer's write-ahead log, written in one system call per commit instead of two per page.
//!
//! SQLite appends a commit to its log one frame at a time: a 24-byte header and a page, each
//! its own `pwrite`, then one `fsync`. A send group's commit is ~170 frames, so ~340 writes
//! into the page cache, and a profile of keyed sends found them a quarter of the writer's
//! time (each write takes the file's lock, checks limits and stamps the inode). On this
//! machine's disk, 172 frames written as 344 `pwrite`s took 0.50–0.69 ms and as one 0.10–0.14
//! ms, and the `fsync` after the one write was quicker too (0.46 against 0.85 ms).
//!
//! So the writer's connection opens its database through a VFS of its own ([`NAME`], see
//! [`uri`]): a thin layer over SQLite's default one that forwards every call, except that the
//! log file's writes are kept in memory while they follow one another and are written together
//! just before anything could need them in the file:
//!
//! - before the log is synced (`xSync`): with `synchronous = FULL`, which every connection
//!   here uses, each commit syncs its log before it publishes its frames to other connections,
//!   so the frames are on disk in the same order of events as before;
//! - before the log is read, truncated or its size asked (the writer's own checkpoint, a
//!   rewrite of checksums), and before a write that does not follow the pending ones (unless
//!   it falls inside them);
//! - and, as a second line, when the connection publishes a new log header to other
//!   connections (`xShmBarrier` on the database file, which SQLite calls between the two
//!   copies of the header it writes): with a lower `synchronous`, a commit would not sync the
//!   log, and readers must not find frames that are still in this memory.
//!
//! And never after the transaction: what is still pending when the connection releases the
//! log's write lock (`xShmLock`), or closes the file, is the frames of a transaction that was
//! rolled back or whose commit failed, and it is forgotten. Once the lock is free another
//! connection (the pool's, which write too) may commit frames at the same places, which these
//! must never be written over; and a commit reported failed must not be found whole in the log
//! after a crash.
//!
//! What reaches the file is byte for byte what SQLite wrote, in the same places; a crash
//! before the sync loses what it would have lost (an unsynced commit, which no caller was told
//! of), and SQLite's frame checksums find a torn log as before. A failed write keeps its bytes
//! pending (SQLite counts them written) and is reported by the call that flushed it; the
//! commit's sync tries them again, so the commit fails as it would have. At most [`MAX_PENDING`] bytes wait (a commit larger
//! than that is written in parts). Only on files with SQLite's "powersafe overwrite" (the
//! default); elsewhere the log's writes go through as they come.
//!
//! Only the writer's connection uses it; every other connection uses the default VFS. It
//! assumes SQLite's normal locking mode (with `locking_mode = EXCLUSIVE` SQLite never releases
//! the write lock through `xShmLock`); nothing here sets another.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use libsqlite3_sys as ffi;

/// The VFS's name, for `?vfs=` in a connection's URI.
pub const NAME: &CStr = c"hubbub-batched-log";

/// The most bytes of log kept before they are written (a send group's commit is ~0.7 MB).
pub const MAX_PENDING: usize = 8 << 20;

/// The most bytes passed to the default VFS in one write: its `unixWrite` takes at most
/// 128 KiB − 1 per call (it masks the length with `0x1ffff`, as SQLite itself never writes
/// more than a page), so pending bytes go in pieces of 124 KiB: ~6 system calls for a send
/// group's commit instead of ~340.
const WRITE_LIMIT: usize = 124 << 10;

/// A database path as a URI that opens it through this VFS (registered here on first use).
/// `None` if it cannot be registered, and the caller opens the path as it is.
pub fn uri(path: &str) -> Option<String> {
    register().then(|| with_vfs(path))
}

fn with_vfs(path: &str) -> String {
    let name = NAME.to_str().unwrap_or_default();
    match path.strip_prefix("file:") {
        Some(rest) => {
            let sep = if rest.contains('?') { '&' } else { '?' };
            format!("{path}{sep}vfs={name}")
        }
        None => {
            let mut escaped = String::with_capacity(path.len() + 8);
            for c in path.chars() {
                match c {
                    '%' => escaped.push_str("%25"),
                    '?' => escaped.push_str("%3F"),
                    '#' => escaped.push_str("%23"),
                    c => escaped.push(c),
                }
            }
            format!("file:{escaped}?vfs={name}")
        }
    }
}

/// Registers the VFS once (not as the default). False if SQLite has no default VFS to wrap.
fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| unsafe {
        let inner = ffi::sqlite3_vfs_find(ptr::null());
        if inner.is_null() {
            return false;
        }
        let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: (std::mem::size_of::<File>() + (*inner).szOsFile as usize) as c_int,
            mxPathname: (*inner).mxPathname,
            pNext: ptr::null_mut(),
            zName: NAME.as_ptr(),
            pAppData: inner.cast(),
            xOpen: Some(open),
            xDelete: Some(delete),
            xAccess: Some(access),
            xFullPathname: Some(full_pathname),
            xDlOpen: Some(dl_open),
            xDlError: Some(dl_error),
            xDlSym: Some(dl_sym),
            xDlClose: Some(dl_close),
            xRandomness: Some(randomness),
            xSleep: Some(sleep),
            xCurrentTime: Some(current_time),
            xGetLastError: Some(get_last_error),
            xCurrentTimeInt64: Some(current_time_int64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
    })
}

// Log writes this thread's connections asked for and passed on to the file (tests only).
#[cfg(test)]
thread_local! {
    static LOG_WRITES: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

#[cfg(test)]
fn count(asked: u64, passed: u64) {
    LOG_WRITES.with(|c| {
        let (a, p) = c.get();
        c.set((a + asked, p + passed));
    });
}

#[cfg(not(test))]
fn count(_asked: u64, _passed: u64) {}

// Writes of pending bytes this thread's connections are to fail, as a full disk would (tests).
#[cfg(test)]
thread_local! {
    static FAIL_WRITES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn failing() -> bool {
    FAIL_WRITES.with(|n| {
        n.get() > 0 && {
            n.set(n.get() - 1);
            true
        }
    })
}

#[cfg(not(test))]
fn failing() -> bool {
    false
}

/// The log bytes written but not yet passed on: `bytes` belong at `offset` in the file.
#[derive(Default)]
struct Pending {
    offset: i64,
    bytes: Vec<u8>,
    /// A new log header has been published while these bytes were pending (their write at
    /// `xShmBarrier` failed): readers may look for them, so they must still be written.
    published: bool,
}

/// What SQLite allocates for each open file (`szOsFile`): this header, then the default VFS's
/// own file right after it.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    /// A log file's pending writes (owned); null for every other file.
    pending: *mut Pending,
    /// For a database file: its open log file (to flush at `xShmBarrier`). For a log file: its
    /// database file (to unlink itself on close). Null otherwise.
    partner: *mut File,
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

unsafe fn inner_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

unsafe fn this(f: *mut ffi::sqlite3_file) -> *mut File {
    f.cast()
}

/// The default VFS's method `$m` of file `$f`, called with `$f`'s inner file and `$args`; `$none`
/// if the inner file has no such method.
macro_rules! forward {
    ($f:expr, $m:ident, $none:expr $(, $arg:expr)*) => {{
        let inner = (*this($f)).inner;
        match (*(*inner).pMethods).$m {
            Some(m) => m(inner $(, $arg)*),
            None => $none,
        }
    }};
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = inner_vfs(vfs);
    let f = this(file);
    let inner = f.cast::<u8>().add(std::mem::size_of::<File>()).cast();
    ptr::write(
        f,
        File {
            base: ffi::sqlite3_file {
                pMethods: ptr::null(),
            },
            inner,
            pending: ptr::null_mut(),
            partner: ptr::null_mut(),
        },
    );
    let Some(open_inner) = (*inner_vfs).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    // The inner file's method table is read before it opens, so it must start empty.
    (*inner).pMethods = ptr::null();
    let rc = open_inner(inner_vfs, name, inner, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        if !(*inner).pMethods.is_null() {
            if let Some(close) = (*(*inner).pMethods).xClose {
                close(inner);
            }
        }
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_WAL != 0 && !name.is_null() {
        // The log's database file, opened through this VFS by the same connection: its
        // `xShmLock` and `xShmBarrier` say when the pending bytes must go.
        let db = this(ffi::sqlite3_database_file_object(name));
        let ours = !db.is_null() && ptr::eq((*db).base.pMethods, &METHODS);
        // Only where a write can't harm the bytes around it (SQLite's "powersafe overwrite",
        // the default, which SQLite reads off the database file): elsewhere SQLite pads a
        // commit after its sync, and those frames would wait for `xShmBarrier`.
        if ours && device_characteristics(db.cast()) & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0 {
            (*f).pending = Box::into_raw(Box::default());
            (*db).partner = f;
            (*f).partner = db;
        }
    }
    (*f).base.pMethods = &METHODS;
    rc
}

/// Writes the pending bytes, if any, in pieces of at most [`WRITE_LIMIT`]. If a write fails the
/// bytes stay pending: they are frames of the open transaction (SQLite counts them written),
/// so the commit's sync tries them again and fails the commit if they still can't be written
/// (and then forgets them: [`sync`]).
unsafe fn flush(f: *mut File) -> c_int {
    let Some(p) = (*f).pending.as_mut() else {
        return ffi::SQLITE_OK;
    };
    let mut offset = p.offset;
    for piece in p.bytes.chunks(WRITE_LIMIT) {
        count(0, 1);
        if failing() {
            return ffi::SQLITE_FULL;
        }
        let rc = forward!(
            f.cast(),
            xWrite,
            ffi::SQLITE_IOERR_WRITE,
            piece.as_ptr().cast(),
            piece.len() as c_int,
            offset
        );
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        offset += piece.len() as i64;
    }
    p.bytes.clear();
    p.published = false;
    ffi::SQLITE_OK
}

/// At the end of a write transaction (the log's write lock released) or of the file: forgets
/// what is still pending. Those bytes belong to a transaction that was rolled back, or whose
/// commit failed: a commit writes its frames before it publishes them. Written later, they
/// could land over frames another connection has committed since; written now, a commit its
/// caller was told had failed could be found whole in the log after a crash. Only bytes a
/// published header already counts (a failed write at `xShmBarrier`) are tried once more.
unsafe fn forget(f: *mut File) -> c_int {
    let Some(p) = (*f).pending.as_mut() else {
        return ffi::SQLITE_OK;
    };
    let rc = if p.published {
        flush(f)
    } else {
        ffi::SQLITE_OK
    };
    if let Some(p) = (*f).pending.as_mut() {
        p.bytes.clear();
        p.published = false;
    }
    rc
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = this(file);
    let flushed = forget(f);
    let partner = (*f).partner;
    if !partner.is_null() {
        (*partner).partner = ptr::null_mut();
    }
    if !(*f).pending.is_null() {
        drop(Box::from_raw((*f).pending));
        (*f).pending = ptr::null_mut();
    }
    let rc = forward!(file, xClose, ffi::SQLITE_OK);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        rc
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let f = this(file);
    let Some(p) = (*f).pending.as_mut() else {
        return forward!(file, xWrite, ffi::SQLITE_IOERR_WRITE, data, amount, offset);
    };
    count(1, 0);
    let n = amount.max(0) as usize;
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), n);
    let end = p.offset + p.bytes.len() as i64;
    if !p.bytes.is_empty() {
        if offset >= p.offset && offset + n as i64 <= end {
            // Over bytes still pending (a page written twice in one transaction).
            let at = (offset - p.offset) as usize;
            p.bytes[at..at + n].copy_from_slice(bytes);
            return ffi::SQLITE_OK;
        }
        if offset != end || p.bytes.len() + n > MAX_PENDING {
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
    }
    if n > WRITE_LIMIT {
        count(0, 1);
        return forward!(file, xWrite, ffi::SQLITE_IOERR_WRITE, data, amount, offset);
    }
    if p.bytes.is_empty() {
        p.offset = offset;
    }
    p.bytes.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let rc = flush(this(file));
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    forward!(file, xRead, ffi::SQLITE_IOERR_READ, data, amount, offset)
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let rc = flush(this(file));
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    forward!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size)
}

/// A sync that cannot write the pending bytes fails, and they are forgotten at once: SQLite
/// rolls back the whole transaction when a log sync fails (a commit, or the header of a log
/// started again), and its rollback reads pages, which would otherwise write them now, a
/// failed commit's frames with its commit mark among them.
unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let f = this(file);
    let rc = flush(f);
    if rc != ffi::SQLITE_OK {
        if let Some(p) = (*f).pending.as_mut() {
            p.bytes.clear();
            p.published = false;
        }
        return rc;
    }
    forward!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags)
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let rc = flush(this(file));
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    forward!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size)
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(file, xLock, ffi::SQLITE_IOERR_LOCK, level)
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(file, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level)
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    forward!(
        file,
        xCheckReservedLock,
        ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        out
    )
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    forward!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg)
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xSectorSize, 4096)
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xDeviceCharacteristics, 0)
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(
        file,
        xShmMap,
        ffi::SQLITE_IOERR_SHMMAP,
        page,
        size,
        extend,
        out
    )
}

/// The log's write lock, in SQLite's shared memory (slot 0, `WAL_WRITE_LOCK`).
const WRITE_LOCK: c_int = 0;

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let partner = (*this(file)).partner;
    let releases_write_lock = flags == ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE
        && offset <= WRITE_LOCK
        && WRITE_LOCK < offset + n;
    if releases_write_lock && !partner.is_null() {
        // SQLite ignores an unlock's result.
        forget(partner);
    }
    forward!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
}
/// SQLite calls it between the two copies of a new log header it publishes: the log's frames
/// must be in the file before the second. (With `synchronous = FULL` the commit's sync has
/// already written them and there is nothing to do; the result of a write here has nowhere to
/// go, so the writer's connection relies on FULL and this is the second line.)
unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    let partner = (*this(file)).partner;
    if !partner.is_null() && flush(partner) != ffi::SQLITE_OK {
        if let Some(p) = (*partner).pending.as_mut() {
            p.published = true;
        }
    }
    forward!(file, xShmBarrier, ())
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    forward!(file, xShmUnmap, ffi::SQLITE_OK, delete)
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(
        file,
        xFetch,
        {
            *out = ptr::null_mut();
            ffi::SQLITE_OK
        },
        offset,
        amount,
        out
    )
}

unsafe extern "C" fn unfetch(file: *mut ffi::sqlite3_file, offset: i64, p: *mut c_void) -> c_int {
    forward!(file, xUnfetch, ffi::SQLITE_OK, offset, p)
}

/// The default VFS's method `$m`, called with it and `$args`; `$none` if it has no such method.
macro_rules! forward_vfs {
    ($vfs:expr, $m:ident, $none:expr $(, $arg:expr)*) => {{
        let inner = inner_vfs($vfs);
        match (*inner).$m {
            Some(m) => m(inner $(, $arg)*),
            None => $none,
        }
    }};
}

unsafe extern "C" fn delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    forward_vfs!(vfs, xDelete, ffi::SQLITE_IOERR_DELETE, name, sync)
}

unsafe extern "C" fn access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    forward_vfs!(vfs, xAccess, ffi::SQLITE_IOERR_ACCESS, name, flags, out)
}

unsafe extern "C" fn full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    forward_vfs!(vfs, xFullPathname, ffi::SQLITE_CANTOPEN, name, n, out)
}

unsafe extern "C" fn dl_open(vfs: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    forward_vfs!(vfs, xDlOpen, ptr::null_mut(), name)
}

unsafe extern "C" fn dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    forward_vfs!(vfs, xDlError, (), n, out)
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    symbol: *const c_char,
) -> Option<DlSym> {
    forward_vfs!(vfs, xDlSym, None, handle, symbol)
}

unsafe extern "C" fn dl_close(vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    forward_vfs!(vfs, xDlClose, (), handle)
}

unsafe extern "C" fn randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    forward_vfs!(vfs, xRandomness, 0, n, out)
}

unsafe extern "C" fn sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    forward_vfs!(vfs, xSleep, 0, micros)
}

unsafe extern "C" fn current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    forward_vfs!(vfs, xCurrentTime, ffi::SQLITE_ERROR, out)
}

unsafe extern "C" fn get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    forward_vfs!(vfs, xGetLastError, 0, n, out)
}

unsafe extern "C" fn current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    let inner = inner_vfs(vfs);
    match (*inner).xCurrentTimeInt64 {
        Some(m) if (*inner).iVersion >= 2 => m(inner, out),
        _ => ffi::SQLITE_ERROR,
    }
}

#[cfg(test)]
mod tests;
