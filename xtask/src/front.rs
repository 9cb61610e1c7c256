//! The front of an app-id's replicas on the local stack: a TCP listener on
//! the app's usual port that hands each new connection to the next replica
//! (round robin) that is ready and accepts it, then copies bytes both ways.
//! It knows no HTTP, so keep-alive, request bodies and Server-Sent Events
//! pass as they are; a connection stays with its replica until either side
//! closes it.
//!
//! As a Kubernetes Service skips a pod that is not ready, the front polls
//! each replica's readiness route (`/readyz/<app-id>`: the host answers and
//! its sidecar is up) every [`READINESS_POLL`]; a replica that refuses
//! connections or is not ready gets no new connection, and its open ones are
//! closed, so that clients reconnect to a ready replica. With none ready, a
//! connection still goes to one that accepts, which answers for itself.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

/// How often the front asks each replica whether it is ready.
const READINESS_POLL: Duration = Duration::from_millis(500);

/// One replica behind a front.
pub struct Backend {
    /// Its host's port.
    pub port: u16,
    /// Its readiness URL; `None`: ready whenever it accepts connections.
    pub ready_url: Option<String>,
}

/// What the accept loop, the relays and the readiness poller share.
struct Shared {
    backends: Vec<Backend>,
    ready: Vec<AtomicBool>,
    /// Open connections: id -> (backend index, the backend side of it).
    open: Mutex<HashMap<u64, (usize, TcpStream)>>,
    next: AtomicUsize,
    next_id: AtomicU64,
    stop: AtomicBool,
}

/// A running front; dropping it stops accepting (open connections finish).
pub struct Front {
    port: u16,
    shared: Arc<Shared>,
}

impl Front {
    /// Listens on 127.0.0.1:`port` for the replicas `backends`.
    pub fn start(port: u16, backends: Vec<Backend>) -> Result<Front> {
        let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("the front on port {port}"))?;
        let ready = backends.iter().map(|_| AtomicBool::new(true)).collect();
        let shared = Arc::new(Shared {
            backends,
            ready,
            open: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    let _ = relay(client, &shared);
                });
            }
        });
        if shared.backends.iter().any(|b| b.ready_url.is_some()) {
            let polling = shared.clone();
            std::thread::spawn(move || poll_readiness(&polling));
        }
        Ok(Front { port, shared })
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], self.port)), Duration::from_millis(200));
    }
}

/// Updates each replica's readiness; closes the open connections of one that
/// stopped being ready.
fn poll_readiness(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        for (i, backend) in shared.backends.iter().enumerate() {
            let Some(url) = &backend.ready_url else { continue };
            let ready = crate::stack::http_ok(url);
            if shared.ready[i].swap(ready, Ordering::Relaxed) && !ready {
                let open = shared.open.lock().expect("the front's connections");
                for (backend, stream) in open.values() {
                    if *backend == i {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                }
            }
        }
        std::thread::sleep(READINESS_POLL);
    }
}

fn connect(port: u16) -> Option<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).ok()
}

/// Connects `client` to the first ready replica, from the next in turn, that
/// accepts (else to any that accepts), and copies both ways until both sides
/// are done. With none up, the client's connection is closed.
fn relay(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let n = shared.backends.len();
    let start = shared.next.fetch_add(1, Ordering::Relaxed);
    let order: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
    let ready = order.iter().filter(|&&i| shared.ready[i].load(Ordering::Relaxed));
    let chosen = ready.chain(order.iter()).find_map(|&i| connect(shared.backends[i].port).map(|stream| (i, stream)));
    let Some((index, backend)) = chosen else {
        return client.shutdown(Shutdown::Both);
    };
    client.set_nodelay(true)?;
    backend.set_nodelay(true)?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    shared.open.lock().expect("the front's connections").insert(id, (index, backend.try_clone()?));
    let (mut client_read, mut backend_write) = (client.try_clone()?, backend.try_clone()?);
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut backend_write);
        let _ = backend_write.shutdown(Shutdown::Write);
    });
    let (mut backend_read, mut client_write) = (backend, client);
    let _ = io::copy(&mut backend_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = upstream.join();
    shared.open.lock().expect("the front's connections").remove(&id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// An echo server that prefixes every answer with its name.
    fn named_server(name: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 64];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let _ = stream.write_all(format!("{name}:{}", String::from_utf8_lossy(&buf[..n])).as_bytes());
                });
            }
        });
        port
    }

    /// A port nothing listens on: a replica that is down.
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn ask(port: u16) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"hi").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    fn always(port: u16) -> Backend {
        Backend { port, ready_url: None }
    }

    #[test]
    fn connections_go_round_robin_and_skip_a_replica_that_is_down() {
        let (a, b) = (named_server("a"), named_server("b"));
        let front_port = free_port();
        let _front = Front::start(front_port, vec![always(a), always(free_port()), always(b)]).unwrap();
        let answers: Vec<String> = (0..6).map(|_| ask(front_port)).collect();
        assert!(answers.iter().all(|x| x == "a:hi" || x == "b:hi"), "{answers:?}");
        assert!(answers.iter().any(|x| x == "a:hi") && answers.iter().any(|x| x == "b:hi"), "both replicas serve: {answers:?}");
    }

    #[test]
    fn a_replica_that_is_not_ready_gets_no_connection_while_another_is() {
        let (a, b) = (named_server("a"), named_server("b"));
        // b accepts connections, but its readiness route answers nothing.
        let not_ready = Backend { port: b, ready_url: Some(format!("http://127.0.0.1:{}/readyz", free_port())) };
        let front_port = free_port();
        let _front = Front::start(front_port, vec![always(a), not_ready]).unwrap();
        std::thread::sleep(READINESS_POLL / 2);
        let answers: Vec<String> = (0..6).map(|_| ask(front_port)).collect();
        assert!(answers.iter().all(|x| x == "a:hi"), "{answers:?}");
    }

    #[test]
    fn with_no_replica_ready_one_that_accepts_still_answers() {
        let b = named_server("b");
        let not_ready = Backend { port: b, ready_url: Some(format!("http://127.0.0.1:{}/readyz", free_port())) };
        let front_port = free_port();
        let _front = Front::start(front_port, vec![not_ready]).unwrap();
        std::thread::sleep(READINESS_POLL / 2);
        assert_eq!(ask(front_port), "b:hi");
    }

    #[test]
    fn with_every_replica_down_the_connection_is_closed() {
        let front_port = free_port();
        let _front = Front::start(front_port, vec![always(free_port())]).unwrap();
        assert_eq!(ask(front_port), "");
    }
}
