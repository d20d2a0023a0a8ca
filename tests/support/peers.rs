//! Real foreign peers for the end-to-end tests: a `redis-server`, an `openssl s_server` and
//! `socat` listeners, each started on a free loopback port and killed (with its whole process
//! group) when dropped.
//!
//! A test first asks [`require_binary`] whether the program is installed. When it is not, the
//! test is skipped with one line naming the Debian package, except under `CI=true`, where a
//! missing program fails the test: the gate must never pass by skipping.
//!
//! Every wait here is a poll against a deadline: a peer is ready when it answers (Redis) or
//! when the kernel lists its port as listening (s_server and socat accept a single connection,
//! so a probe connection would use it up).

#![allow(dead_code, unreachable_pub)] // Each test crate uses a different part of this module.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a peer may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports a peer tries before giving up (another process may take a port between the
/// moment it is found free and the moment the peer binds it).
const START_ATTEMPTS: usize = 5;

/// Returns whether `name` can be run. If it cannot, panics naming the Debian `package` when
/// the environment has `CI=true`, and otherwise prints one line saying what to install and
/// returns `false`, so the test returns at once.
pub fn require_binary(name: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name))));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("`{name}` is missing: install the Debian package {package}");
    }
    println!("skipping: install the Debian package {package}");
    false
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Whether the kernel lists a socket listening on 127.0.0.1:`port` (Linux's /proc/net/tcp).
fn is_listening(port: u16) -> bool {
    let wanted = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|table| {
        table.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace().skip(1);
            fields.next() == Some(wanted.as_str()) && fields.nth(1) == Some("0A")
        })
    })
}

/// Polls `ready` until it holds or the start timeout passes, failing early if `child` exits.
/// Returns whether it became ready.
fn wait_ready(child: &mut Child, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Sends `signal` (a name such as `STOP`) to the process `pid`, through `kill(1)`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A child process in a process group of its own: dropping it kills the group and reaps the
/// child.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    /// Starts `command` in a new process group.
    fn spawn(mut command: Command, port: u16) -> io::Result<Self> {
        command.process_group(0);
        Ok(Self { child: command.spawn()?, port })
    }

    /// The peer's address, 127.0.0.1 and its port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the process (SIGSTOP): it reads and writes nothing until [`Peer::resume`].
    pub fn stop(&self) {
        signal(self.pid(), "STOP");
    }

    /// Lets a stopped process run again (SIGCONT).
    pub fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// Kills the process (SIGKILL), stopped or not; its kernel then closes its sockets, with a
    /// reset where bytes were left unread. Reaped on drop.
    pub fn kill(&self) {
        signal(self.pid(), "KILL");
    }

    /// A function that lets the process run again, for another thread.
    pub fn resumer(&self) -> impl FnOnce() + Send + 'static {
        let pid = self.pid();
        move || signal(pid, "CONT")
    }

    /// Waits up to `timeout` for the process to exit by itself; returns whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.child.try_wait().ok().flatten().is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // The whole group: socat's and s_server's helpers (`sh`, `yes`) too. A stopped
        // process is killed all the same.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a peer on a free port: `command(port)` builds its command line, `ready(port)` says
/// when it serves. Retries on a new port when it exits or does not get ready.
fn start_on_free_port(
    what: &str,
    command: impl Fn(u16) -> Command,
    ready: impl Fn(u16) -> bool,
) -> Peer {
    for _ in 0..START_ATTEMPTS {
        let port = free_port();
        let mut peer =
            Peer::spawn(command(port), port).unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        if wait_ready(&mut peer.child, || ready(port)) {
            return peer;
        }
    }
    panic!("{what} did not start listening in {START_ATTEMPTS} attempts");
}

/// Reads everything from `from` on a thread of its own, until end of file.
fn read_all_on_a_thread(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = from.read_to_end(&mut out);
        out
    })
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A `redis-server` listening on 127.0.0.1: without persistence, or durable in a directory
/// of its own.
#[derive(Debug)]
pub struct Redis {
    peer: Peer,
    /// Where a durable server keeps its append-only file.
    dir: Option<PathBuf>,
}

/// The command line of a server on `port`: durable in `dir` (every write appended and synced
/// before it is answered), or with no persistence.
fn redis_command(port: u16, dir: Option<&Path>) -> Command {
    let mut command = Command::new("redis-server");
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--protected-mode", "no"]);
    match dir {
        Some(dir) => command
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir),
        None => command.args(["--save", "", "--appendonly", "no"]),
    };
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

/// Whether a server on `port` answers `PING` (a loading one answers `-LOADING`).
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    RespConn::connect(addr)
        .and_then(|mut conn| conn.command(&["PING"]))
        .is_ok_and(|reply| matches!(reply, Reply::Simple(ref pong) if pong == "PONG"))
}

impl Redis {
    /// Starts a server and waits until it answers `PING`.
    pub fn start() -> Self {
        let peer =
            start_on_free_port("redis-server", |port| redis_command(port, None), answers_ping);
        Self { peer, dir: None }
    }

    /// Starts a durable server keeping its data in `dir` (`appendonly yes`, `appendfsync
    /// always`), and waits until it answers `PING`.
    pub fn start_durable(dir: &Path) -> Self {
        let peer =
            start_on_free_port("redis-server", |port| redis_command(port, Some(dir)), answers_ping);
        Self { peer, dir: Some(dir.to_path_buf()) }
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.peer.child.kill();
        let _ = self.peer.child.wait();
    }

    /// Starts the server again on the same port (after [`Redis::kill`]), loading what a
    /// durable one kept, and waits until it answers `PING`.
    pub fn restart(&mut self) {
        let port = self.peer.port;
        let command = redis_command(port, self.dir.as_deref());
        self.peer = Peer::spawn(command, port).expect("restart redis-server");
        assert!(
            wait_ready(&mut self.peer.child, || answers_ping(port)),
            "redis-server did not come back on port {port}"
        );
    }

    /// The URL a client connects to.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.peer.addr())
    }

    /// A new RESP connection of the test's own, to look at what the server holds.
    pub fn conn(&self) -> RespConn {
        RespConn::connect(self.peer.addr()).expect("connect to redis-server")
    }

    /// Freezes the server (SIGSTOP).
    pub fn stop(&self) {
        self.peer.stop();
    }

    /// Lets it run again (SIGCONT).
    pub fn resume(&self) {
        self.peer.resume();
    }

    /// A function that lets the server run again, for another thread.
    pub fn resumer(&self) -> impl FnOnce() + Send + 'static {
        self.peer.resumer()
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Self>>),
}

impl Reply {
    /// The integer of an integer reply; panics on anything else.
    pub fn integer(&self) -> i64 {
        match self {
            Self::Integer(n) => *n,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
}

/// One RESP command: an array of bulk strings.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A tiny blocking RESP client on a plain `TcpStream`, for checking what Redis holds.
#[derive(Debug)]
pub struct RespConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RespConn {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self { writer: stream.try_clone()?, reader: BufReader::new(stream) })
    }

    /// Sends one command and reads its reply.
    pub fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.writer.write_all(&resp_command(&args))?;
        self.read_reply()
    }

    /// `LLEN key`.
    pub fn llen(&mut self, key: &str) -> i64 {
        self.command(&["LLEN", key]).expect("LLEN").integer()
    }

    /// `LRANGE key start stop`, as the elements.
    pub fn lrange(&mut self, key: &str, start: i64, stop: i64) -> Vec<Vec<u8>> {
        let reply =
            self.command(&["LRANGE", key, &start.to_string(), &stop.to_string()]).expect("LRANGE");
        match reply {
            Reply::Array(Some(items)) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(Some(bytes)) => bytes,
                    other => panic!("LRANGE element: {other:?}"),
                })
                .collect(),
            other => panic!("LRANGE: {other:?}"),
        }
    }

    /// `DEL key`, returning how many keys were removed.
    pub fn del(&mut self, key: &str) -> i64 {
        self.command(&["DEL", key]).expect("DEL").integer()
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.strip_suffix("\r\n").ok_or(io::ErrorKind::InvalidData)?;
        Ok(line.to_owned())
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let number =
            || rest.parse::<i64>().map_err(|_| io::Error::from(io::ErrorKind::InvalidData));
        Ok(match kind {
            "+" => Reply::Simple(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Integer(number()?),
            "$" => match number()? {
                -1 => Reply::Bulk(None),
                len => {
                    let mut bytes = vec![0u8; len as usize + 2];
                    self.reader.read_exact(&mut bytes)?;
                    bytes.truncate(len as usize);
                    Reply::Bulk(Some(bytes))
                }
            },
            "*" => match number()? {
                -1 => Reply::Array(None),
                len => Reply::Array(Some(
                    (0..len).map(|_| self.read_reply()).collect::<io::Result<_>>()?,
                )),
            },
            _ => return Err(io::ErrorKind::InvalidData.into()),
        })
    }
}

/// Parses a stream of RESP integer replies (`:<n>\r\n`) as it arrives in chunks of any size.
#[derive(Debug, Default)]
pub struct IntegerReplies {
    partial: Vec<u8>,
    /// Every integer, in arrival order.
    pub values: Vec<i64>,
}

impl IntegerReplies {
    /// Feeds the next chunk. Errors describe the first reply that is not an integer.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.partial.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(end) = self.partial[start..].windows(2).position(|w| w == b"\r\n") {
            let line = &self.partial[start..start + end];
            let text = std::str::from_utf8(line).map_err(|_| format!("not text: {line:?}"))?;
            let value = text
                .strip_prefix(':')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("not an integer reply: {text:?}"))?;
            self.values.push(value);
            start += end + 2;
        }
        self.partial.drain(..start);
        Ok(())
    }

    /// Whether the stream ended between replies.
    pub fn at_boundary(&self) -> bool {
        self.partial.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// openssl s_server

/// A certificate chain written to a directory of its own under the system's temp dir,
/// removed on drop.
#[derive(Debug)]
pub struct CertFiles {
    pub dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// Writes `cert_pem` and `key_pem` to a new directory.
    pub fn write(cert_pem: &str, key_pem: &str) -> Self {
        let dir = std::env::temp_dir().join(super::unique_name("tidegate-peer-tls"));
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        std::fs::write(&cert, cert_pem).expect("write the certificate");
        std::fs::write(&key, key_pem).expect("write the key");
        Self { dir, cert, key }
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `openssl s_server` for one connection: what it decrypts goes to its stdout, which is
/// captured whole. Its stdin is a pipe kept open (with stdin at end of file it stops serving),
/// through which it sends nothing. On the client's close_notify it answers with its own, ends
/// the connection, and exits (`-naccept 1`).
///
/// Its stdout is a file, not a pipe: s_server does not check for a short write to stdout, and
/// a write to a full pipe comes back short when the process is stopped (`SIGSTOP`) in it, so
/// with a pipe the bytes of that write were lost whenever the test's reader fell behind just
/// before a stall (seen when other tests kept the machine busy).
#[derive(Debug)]
pub struct TlsServer {
    peer: Peer,
    stdin: ChildStdin,
    stdout: Option<OutputFile>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

/// A file a peer writes its output to, under the system's temp dir, removed on drop.
#[derive(Debug)]
struct OutputFile {
    path: PathBuf,
}

impl OutputFile {
    fn new(what: &str) -> Self {
        Self { path: std::env::temp_dir().join(super::unique_name(what)) }
    }

    /// A new, empty file for the child's output (truncating what an earlier attempt wrote).
    fn create(&self) -> std::fs::File {
        std::fs::File::create(&self.path).expect("create the output file")
    }

    /// Everything written to it.
    fn read(&self) -> Vec<u8> {
        std::fs::read(&self.path).expect("read the output file")
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl TlsServer {
    /// Starts a server with `certs`, waiting until it listens.
    pub fn start(certs: &CertFiles) -> Self {
        let output = OutputFile::new("tidegate-s_server-out");
        let mut peer = start_on_free_port(
            "openssl s_server",
            |port| {
                let mut command = Command::new("openssl");
                command
                    .arg("s_server")
                    .args(["-accept", &format!("127.0.0.1:{port}")])
                    .arg("-cert")
                    .arg(&certs.cert)
                    .arg("-key")
                    .arg(&certs.key)
                    .args(["-quiet", "-naccept", "1"])
                    .stdin(Stdio::piped())
                    .stdout(output.create())
                    .stderr(Stdio::piped());
                command
            },
            is_listening,
        );
        let stdin = peer.child.stdin.take().expect("piped stdin");
        let stderr = peer.child.stderr.take().expect("piped stderr");
        Self { peer, stdin, stdout: Some(output), stderr: Some(read_all_on_a_thread(stderr)) }
    }

    /// The URL a client connects to.
    pub fn url(&self) -> String {
        format!("tls://{}", self.peer.addr())
    }

    /// The process, to stop and resume it.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Has the server send `bytes` to the client (through its stdin).
    pub fn say(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).and_then(|()| self.stdin.flush()).expect("s_server's stdin");
    }

    /// What the server has decrypted so far.
    pub fn received(&self) -> Vec<u8> {
        self.stdout.as_ref().map(OutputFile::read).unwrap_or_default()
    }

    /// Waits up to `timeout` for the server to exit (it does once the connection ended), then
    /// returns what it wrote to stdout and to stderr. Kills it at the deadline either way.
    pub fn finish(mut self, timeout: Duration) -> (Vec<u8>, String) {
        let exited = self.peer.wait_exit(timeout);
        if !exited {
            eprintln!("s_server did not exit within {timeout:?}; killing it");
        }
        let stdout = self.stdout.take().expect("finished once");
        let stderr = self.stderr.take().expect("finished once");
        // Killed and reaped (if it had not exited): nothing more reaches the file.
        drop(self);
        let stderr = stderr.join().expect("the stderr reader panicked");
        (stdout.read(), String::from_utf8_lossy(&stderr).into_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// socat

/// A `socat` listener for one connection: what the client sends is written to socat's stdout,
/// captured whole; what the client receives comes from a shell command. Both run in their own
/// direction, and socat keeps the other direction going for `linger` after one has ended
/// (its `-t`; the default of half a second would cut a half-closed connection short).
#[derive(Debug)]
pub struct Socat {
    peer: Peer,
    stdout: Option<JoinHandle<Vec<u8>>>,
}

impl Socat {
    /// `socat -t <linger> TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr SYSTEM:'<talk>'!!STDOUT`:
    /// reads from `talk`'s output towards the client and writes what the client sends to
    /// stdout. When `talk` ends, socat ends its write side (FIN) and keeps reading.
    pub fn start(talk: &str, linger: Duration) -> Self {
        let mut peer = start_on_free_port(
            "socat",
            |port| {
                let mut command = Command::new("socat");
                command
                    .args(["-t", &format!("{:.3}", linger.as_secs_f64())])
                    .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"))
                    .arg(format!("SYSTEM:{}!!STDOUT", escape_for_socat(talk)))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit());
                command
            },
            is_listening,
        );
        let stdout = peer.child.stdout.take().expect("piped stdout");
        Self { peer, stdout: Some(read_all_on_a_thread(stdout)) }
    }

    /// A peer that sends `greeting`, then half-closes (FIN) and goes on reading everything.
    pub fn half_closing(greeting: &str) -> Self {
        assert!(greeting.chars().all(|c| c.is_ascii_alphanumeric() || c == ' '));
        Self::start(&format!("printf '{greeting}'"), Duration::from_secs(30))
    }

    /// A peer that writes `bytes` bytes of `ack\n` lines back as fast as the client takes
    /// them, while reading everything; once it has written them all it ends its side, and it
    /// waits up to `linger` for the client's end before it exits.
    pub fn talking_back(bytes: u64, linger: Duration) -> Self {
        Self::start(&format!("yes ack | head -c {bytes}"), linger)
    }

    /// The URL a client connects to.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.peer.addr())
    }

    /// The process.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Waits up to `timeout` for socat to exit (it does once both directions ended), then
    /// returns what it received. Kills it at the deadline either way.
    pub fn finish(mut self, timeout: Duration) -> Vec<u8> {
        if !self.peer.wait_exit(timeout) {
            eprintln!("socat did not exit within {timeout:?}; killing it");
        }
        let stdout = self.stdout.take().expect("finished once");
        drop(self);
        stdout.join().expect("the stdout reader panicked")
    }
}

/// Escapes the characters socat's address parser treats specially (`:`, `,`, `!`, quotes),
/// so a shell command reaches `sh -c` as written.
fn escape_for_socat(command: &str) -> String {
    let mut out = String::with_capacity(command.len());
    for c in command.chars() {
        if matches!(c, ':' | ',' | '!' | '\\' | '"' | '\'' | '(' | ')' | '[' | ']' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
