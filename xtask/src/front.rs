//! The front of an app-id's replicas on the local stack: a TCP listener on
//! the app's usual port that hands each new connection to the next replica
//! (round robin) that accepts it, then copies bytes both ways. It knows no
//! HTTP, so keep-alive, request bodies and Server-Sent Events pass as they
//! are; a connection stays with its replica until either side closes it.
//! A replica that is down (its port refuses) is skipped, as a Kubernetes
//! Service skips a pod that is not ready.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

/// A running front; dropping it stops accepting (open connections finish).
pub struct Front {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Front {
    /// Listens on 127.0.0.1:`port` for the replicas on `backends`.
    pub fn start(port: u16, backends: Vec<u16>) -> Result<Front> {
        let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("the front on port {port}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let (backends, next) = (backends.clone(), next.clone());
                std::thread::spawn(move || {
                    let _ = relay(client, &backends, &next);
                });
            }
        });
        Ok(Front { port, stop })
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], self.port)), Duration::from_millis(200));
    }
}

/// Connects `client` to the first replica, from the next in turn, that
/// accepts, and copies both ways until both sides are done. With none up,
/// the client's connection is closed.
fn relay(client: TcpStream, backends: &[u16], next: &AtomicUsize) -> io::Result<()> {
    let start = next.fetch_add(1, Ordering::Relaxed);
    let backend = (0..backends.len())
        .map(|k| backends[(start + k) % backends.len()])
        .find_map(|port| TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(500)).ok());
    let Some(backend) = backend else {
        return client.shutdown(Shutdown::Both);
    };
    client.set_nodelay(true)?;
    backend.set_nodelay(true)?;
    let (mut client_read, mut backend_write) = (client.try_clone()?, backend.try_clone()?);
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut backend_write);
        let _ = backend_write.shutdown(Shutdown::Write);
    });
    let (mut backend_read, mut client_write) = (backend, client);
    let _ = io::copy(&mut backend_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
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

    fn ask(port: u16) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"hi").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn connections_go_round_robin_and_skip_a_replica_that_is_down() {
        let (a, b) = (named_server("a"), named_server("b"));
        // A port nothing listens on: a replica that is down.
        let down = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let front_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _front = Front::start(front_port, vec![a, down, b]).unwrap();
        let answers: Vec<String> = (0..6).map(|_| ask(front_port)).collect();
        assert!(answers.iter().all(|x| x == "a:hi" || x == "b:hi"), "{answers:?}");
        assert!(answers.iter().any(|x| x == "a:hi") && answers.iter().any(|x| x == "b:hi"), "both replicas serve: {answers:?}");
    }

    #[test]
    fn with_every_replica_down_the_connection_is_closed() {
        let down = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let front_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _front = Front::start(front_port, vec![down]).unwrap();
        assert_eq!(ask(front_port), "");
    }
}
