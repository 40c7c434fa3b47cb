//! Shared by the netns tests that run a `MultiDriver` themselves.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::thread::JoinHandle;

use lb_testing_netns::Host;
use lb_vrrp::linux::MultiDriver;
use tokio::sync::oneshot;

/// A [`MultiDriver`] running in a thread inside `host`'s namespace, on its
/// own current-thread tokio runtime, set up by `setup`.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// Stops the driver (Masters send priority 0 and drop their addresses)
    /// and returns what `run` returned.
    pub fn stop(mut self) -> io::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.thread
            .take()
            .map_or(Ok(()), |t| t.join().expect("driver thread panicked"))
    }
}

/// Starts a driver in `host`: `setup` adds its routers and settings, then
/// it runs until [`Running::stop`].
pub fn spawn_multi(host: &Host, setup: impl FnOnce(&mut MultiDriver) + Send + 'static) -> Running {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = host
        .spawn_thread(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut d = MultiDriver::new().unwrap();
                setup(&mut d);
                d.run(stop_rx).await
            })
        })
        .unwrap();
    Running {
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}
