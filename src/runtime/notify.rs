//! systemd's service notification (`Type=notify`): READY=1 once every port is attached,
//! RELOADING=1 / READY=1 around a reload, WATCHDOG=1 from the control loop (at half of
//! `WatchdogSec`), STOPPING=1 on the way out. Nothing is sent without `NOTIFY_SOCKET`.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::warn;

/// The notifier and the watchdog's schedule.
#[derive(Debug)]
pub(super) struct Notify {
    enabled: bool,
    watchdog: Option<Duration>,
    next: Option<Instant>,
    failed: bool,
}

impl Notify {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub(super) fn from_env() -> Notify {
        Notify {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled().map(|d| d / 2),
            next: None,
            failed: false,
        }
    }

    fn send(&mut self, states: &[NotifyState<'_>]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            if !self.failed {
                warn!(error = %e, "systemd notification failed (NOTIFY_SOCKET)");
                self.failed = true;
            }
        }
    }

    /// Every port attached, workers running.
    pub(super) fn ready(&mut self) {
        self.send(&[NotifyState::Ready, NotifyState::Status("forwarding")]);
    }

    /// A reload starts.
    pub(super) fn reloading(&mut self) {
        match NotifyState::monotonic_usec_now() {
            Ok(t) => self.send(&[NotifyState::Reloading, t]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// A reload ended (applied or refused: the old configuration runs on either way).
    pub(super) fn reloaded(&mut self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Shutting down.
    pub(super) fn stopping(&mut self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// Called every control-loop round: WATCHDOG=1 when due.
    pub(super) fn tick(&mut self, now: Instant) {
        let Some(every) = self.watchdog else { return };
        if self.next.is_none_or(|t| now >= t) {
            self.send(&[NotifyState::Watchdog]);
            self.next = Some(now + every);
        }
    }
}
