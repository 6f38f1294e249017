//! A TCP proxy that can drop its connections *silently*: after [`FreezingProxy::freeze`], every
//! connection it had accepted stops carrying bytes in either direction, yet stays open — no FIN,
//! no reset — as when a NAT or a load balancer forgets a connection. Connections accepted later
//! are carried normally, so a client that gives up on a stalled connection and opens a new one
//! gets through.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

pub struct FreezingProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    /// Connections with an index below this value are frozen.
    frozen_below: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl FreezingProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let accepted = Arc::new(AtomicU64::new(0));
        let (frozen_below, frozen) = watch::channel(0u64);
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let index = counter.fetch_add(1, Ordering::SeqCst);
                let mut frozen = frozen.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = async { frozen.wait_for(|&below| index < below).await.map(|_| ()) } => {
                            // Keep both sockets open and carry nothing: a silent drop.
                            std::future::pending::<()>().await;
                        }
                    }
                });
            }
        });
        Self { addr, accepted, frozen_below, task }
    }

    /// Stalls every connection accepted so far.
    pub fn freeze(&self) {
        self.frozen_below.send_replace(self.accepted.load(Ordering::SeqCst));
    }

    /// Refuses new connections from now on (the listener closes); those already open stay as
    /// they are.
    pub async fn stop_accepting(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// How many connections the proxy has accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
