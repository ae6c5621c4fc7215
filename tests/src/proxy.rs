//! A TCP proxy the test controls, to cut a gate off from the hub the way a
//! failing Wi-Fi does: while cut, bytes vanish in both directions and new
//! connections are accepted but go nowhere — no reset tells either end. On
//! heal the dead connections are closed and new ones pass again.
#![allow(clippy::expect_used, reason = "test fixture: failing loudly is its job")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The proxy: listens on a free loopback port, forwards to `upstream`.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    /// Odd while cut. A connection forwards only in the even generation it was made in.
    generation: AtomicU64,
    /// Every connection's sockets, with their generation.
    open: Mutex<Vec<(u64, TcpStream)>>,
    /// The proxy is being dropped: the acceptor returns.
    stopped: AtomicBool,
}

impl Shared {
    fn passes(&self, generation: u64) -> bool {
        let now = self.generation.load(Ordering::SeqCst);
        now == generation && now.is_multiple_of(2)
    }
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let generation = accepting.generation.load(Ordering::SeqCst);
                let server = if generation.is_multiple_of(2) { TcpStream::connect(upstream).ok() } else { None };
                let _ = client.set_nodelay(true);
                let mut open = accepting.open.lock().expect("proxy lock");
                open.extend(client.try_clone().ok().map(|c| (generation, c)));
                let Some(server) = server else { continue }; // cut: accepted, goes nowhere
                let _ = server.set_nodelay(true);
                open.extend(server.try_clone().ok().map(|s| (generation, s)));
                drop(open);
                for (from, to) in [(client.try_clone(), server.try_clone()), (Ok(server), Ok(client))] {
                    let (Ok(from), Ok(to)) = (from, to) else { continue };
                    let shared = Arc::clone(&accepting);
                    std::thread::spawn(move || pump(from, to, generation, &shared));
                }
            }
        });
        Self { addr, shared, acceptor: Some(acceptor) }
    }

    /// Cuts every connection, silently.
    pub fn cut(&self) {
        let generation = self.shared.generation.load(Ordering::SeqCst);
        if generation.is_multiple_of(2) {
            self.shared.generation.store(generation + 1, Ordering::SeqCst);
        }
    }

    /// Heals: the connections of before are closed, new ones pass.
    pub fn heal(&self) {
        let generation = self.shared.generation.load(Ordering::SeqCst);
        if !generation.is_multiple_of(2) {
            self.shared.generation.store(generation + 1, Ordering::SeqCst);
        }
        let mut open = self.shared.open.lock().expect("proxy lock");
        let current = self.shared.generation.load(Ordering::SeqCst);
        for (_, socket) in open.iter().filter(|(g, _)| *g != current) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        open.retain(|(g, _)| *g == current);
    }
}

/// Copies `from` to `to` while the proxy passes this connection's generation;
/// after that, reads and drops.
fn pump(mut from: TcpStream, mut to: TcpStream, generation: u64, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.passes(generation) && to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    if shared.passes(generation) {
        let _ = to.shutdown(Shutdown::Write);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag; then it drops the listener.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for (_, socket) in self.shared.open.lock().expect("proxy lock").drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}
