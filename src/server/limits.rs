//! The process's open-file limit, and the socket cap derived from it: past the cap, new
//! upgrades get 503 while plain HTTP requests keep being served.

/// File descriptors kept free for the database, HTTP requests and files.
const RESERVED_FDS: u64 = 256;

/// Raises the soft open-file limit to the hard limit and returns it (1024, the usual default,
/// if the limit can't be read).
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// The default cap on open sockets for a given open-file limit.
pub fn default_socket_cap(fd_limit: u64) -> u64 {
    fd_limit.saturating_sub(RESERVED_FDS).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_everything_else() {
        assert_eq!(default_socket_cap(65536), 65280);
        assert_eq!(default_socket_cap(100), 16);
        assert!(raise_fd_limit() >= 16);
    }
}
