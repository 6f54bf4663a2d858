//! The accept loop: at most [`crate::limits::Limits::max_connections`]
//! connections at once (more wait in the kernel's backlog, costing no task
//! and no file descriptor of ours), each with its TLS handshake (when
//! serving HTTPS) bounded by [`HANDSHAKE_TIMEOUT`] and its request headers
//! by [`HEADER_READ_TIMEOUT`], in a task of its own.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// How long a client may take for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (also how long
/// an idle kept-alive connection is kept).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener`, over TLS with `tls` (plain HTTP without),
/// holding at most `max_connections` connections at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    max_connections: usize,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(
        max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    loop {
        // A slot first: past the cap, connections are not even accepted.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(%err, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(tls, app).await,
                        Ok(Err(err)) => tracing::debug!(%err, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, app).await,
            }
        });
    }
}

async fn serve_connection<S>(stream: S, app: axum::Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
    if let Err(err) = served {
        tracing::debug!(%err, "connection ended with an error");
    }
}
