//! A loopback TCP forwarder: a stable address in front of an API server whose
//! port changes when it restarts. Clients keep their URL; the test switches
//! the backend and every live connection is dropped, as when a real API
//! server goes away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:<port>` to the current backend, byte for byte (TLS
/// passes through untouched). Stops when dropped.
pub struct Forwarder {
    addr: SocketAddr,
    // `None`: nothing behind; new connections are closed at once. Every
    // send, even of the same value, drops the live connections.
    backend: watch::Sender<Option<SocketAddr>>,
    accepted: Arc<AtomicU64>,
    acceptor: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free loopback port and forwards to `backend`. Needs a
    /// tokio runtime; the forwarder belongs to it.
    pub async fn start(backend: Option<SocketAddr>) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), backend).await
    }

    /// Listens on `listen` and forwards to `backend`.
    pub async fn bind(listen: SocketAddr, backend: Option<SocketAddr>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (sender, _) = watch::channel(backend);
        let accepted = Arc::new(AtomicU64::new(0));
        let acceptor = tokio::spawn(accept(listener, sender.clone(), accepted.clone()));
        Ok(Self {
            addr,
            backend: sender,
            accepted,
            acceptor,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`: the URL of an API server behind it.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Forwards new connections to `backend` (`None`: refuse them) and drops
    /// every live one.
    pub fn switch_to(&self, backend: Option<SocketAddr>) {
        self.backend.send_replace(backend);
    }

    /// Drops every live connection; the backend stays.
    pub fn drop_connections(&self) {
        self.backend.send_modify(|_| {});
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.acceptor.abort();
        // Ends every connection task.
        self.backend.send_replace(None);
    }
}

async fn accept(
    listener: TcpListener,
    backend: watch::Sender<Option<SocketAddr>>,
    accepted: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or similar: try again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        accepted.fetch_add(1, Ordering::Relaxed);
        let mut changes = backend.subscribe();
        let target = *changes.borrow_and_update();
        tokio::spawn(async move {
            let Some(target) = target else {
                return; // dropping `client` closes it
            };
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                // Switched or told to drop: both sockets close here.
                _ = changes.changed() => {}
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server that prefixes what it sends back with `tag`.
    async fn echo(tag: u8) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1];
                    while socket.read_exact(&mut buf).await.is_ok() {
                        if socket.write_all(&[tag, buf[0]]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, byte: u8) -> std::io::Result<[u8; 2]> {
        stream.write_all(&[byte]).await?;
        let mut reply = [0u8; 2];
        stream.read_exact(&mut reply).await?;
        Ok(reply)
    }

    #[tokio::test]
    async fn forwards_switches_and_drops_live_connections() {
        let (first, second) = (echo(1).await, echo(2).await);
        let forwarder = Forwarder::start(Some(first)).await.unwrap();
        let mut old = TcpStream::connect(forwarder.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut old, 7).await.unwrap(), [1, 7]);

        forwarder.switch_to(Some(second));
        // The live connection is closed: the next read sees EOF or a reset.
        assert!(round_trip(&mut old, 8).await.is_err());
        let mut new = TcpStream::connect(forwarder.local_addr()).await.unwrap();
        assert_eq!(round_trip(&mut new, 9).await.unwrap(), [2, 9]);

        // Nothing behind: connections are accepted and closed at once.
        forwarder.switch_to(None);
        let mut refused = TcpStream::connect(forwarder.local_addr()).await.unwrap();
        assert!(round_trip(&mut refused, 1).await.is_err());
        assert_eq!(forwarder.accepted(), 3);
    }
}
