//! How many bytes of a TCP stream the peer's TCP has acknowledged, as the kernel counts them.
//!
//! Linux keeps the count in `TCP_INFO` (`tcpi_bytes_acked`, since Linux 4.1). Neither mio nor
//! socket2 reads that option, so this module calls `getsockopt` itself: the crate's only
//! `unsafe` code, one call in one function. Elsewhere the count is unknown.
//!
//! The count includes the sequence numbers the handshake uses on some stacks (gVisor counts
//! the SYN), so a link reads it once when it connects and subtracts that.

use std::io;

/// The kernel's count of acknowledged bytes on the TCP socket `fd`.
///
/// # Errors
///
/// The call failed, or the kernel is too old to have the count (`Unsupported`).
#[cfg(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))]
#[allow(unsafe_code)]
pub(crate) fn bytes_acked(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<u64> {
    use std::mem::{MaybeUninit, offset_of, size_of};
    use std::os::fd::AsRawFd;

    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket, borrowed for the length of the call. `info` is a
    // writable buffer of `len` bytes, and `getsockopt` writes at most `len` bytes into it and
    // stores in `len` how many it wrote. `tcp_info` is plain integers, so the zeroed bytes the
    // kernel leaves unwritten (an older kernel's struct is shorter) make a valid value too.
    let info = unsafe {
        let rc = libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        );
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        info.assume_init()
    };
    if (len as usize) < offset_of!(libc::tcp_info, tcpi_bytes_acked) + size_of::<u64>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel has no tcpi_bytes_acked",
        ));
    }
    Ok(info.tcpi_bytes_acked)
}

/// The kernel's count of acknowledged bytes: unknown on this system.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(all(unix, not(all(target_os = "linux", any(target_env = "gnu", target_env = "musl")))))]
pub(crate) fn bytes_acked(_: std::os::fd::BorrowedFd<'_>) -> io::Result<u64> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no acknowledged-byte count on this system"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};

    #[test]
    fn the_count_grows_by_what_the_peer_received() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let base = super::bytes_acked(client.as_fd()).unwrap();
        client.write_all(&[7; 10_000]).unwrap();
        let mut got = vec![0; 10_000];
        server.read_exact(&mut got).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while super::bytes_acked(client.as_fd()).unwrap() - base < 10_000 {
            assert!(Instant::now() < deadline, "the peer's acknowledgement never came");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(super::bytes_acked(client.as_fd()).unwrap() - base, 10_000);
    }
}
