//! The hub served in-process on a real socket (feature `hub`), for the tests of the hub
//! itself and of the client.

use std::net::SocketAddr;
use std::sync::Arc;

use ssehub::{Config, Hub};
use ssehub_core::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A hub serving on a bound socket from a task of the test's runtime: stopped the way a
/// signal stops it by [`HubServer::stop`], aborted when dropped.
pub struct HubServer {
    /// Where it listens (the port the OS gave when asked for 0).
    pub addr: SocketAddr,
    /// The hub itself, for what no endpoint triggers at once (periodic sweeps).
    pub hub: Arc<Hub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl HubServer {
    /// Binds `addr` (port 0 for any; a fixed one to come back on after a stop) and serves
    /// `store` with `config`, whose `listen` becomes the bound address.
    pub async fn start(addr: SocketAddr, config: Config, store: Arc<dyn Store>) -> HubServer {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hub = Hub::new(
            Config {
                listen: addr,
                ..config
            },
            store,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ssehub::serve(listener, hub.clone(), async {
            let _ = stopped.await;
        }));
        HubServer {
            addr,
            hub,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the hub the way a signal does and returns how `serve` ended.
    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().expect("running").send(());
        self.task
            .take()
            .expect("running")
            .await
            .expect("the serve task")
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
