//! `io::mem`: a `Vec`-backed [`PacketIo`] for tests, fuzzing and benches (DESIGN R9).
//!
//! Each port has a receive queue the test fills with [`MemIo::push_rx`] and a transmit log
//! it reads with [`MemIo::take_tx`]. Received buffers are recycled into a pool, so a
//! steady-state benchmark allocates nothing per packet.

use std::collections::VecDeque;

use super::{PacketIo, Verdict, BATCH};

/// One simulated port.
#[derive(Debug, Default)]
struct MemPort {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

/// Memory-backed packet I/O.
#[derive(Debug)]
pub struct MemIo {
    ports: Vec<MemPort>,
    burst: Vec<Vec<u8>>,
    pool: Vec<Vec<u8>>,
    /// Maximum number of frames kept in each port's TX log (older ones are discarded).
    tx_capacity: usize,
    tx_dropped: u64,
}

impl MemIo {
    /// A memory I/O with `ports` ports.
    pub fn new(ports: usize) -> Self {
        MemIo {
            ports: (0..ports).map(|_| MemPort::default()).collect(),
            burst: Vec::with_capacity(BATCH),
            pool: Vec::new(),
            tx_capacity: usize::MAX,
            tx_dropped: 0,
        }
    }

    /// Bound the TX log per port (benchmarks recycle transmitted frames instead of keeping them).
    pub fn set_tx_capacity(&mut self, cap: usize) {
        self.tx_capacity = cap;
    }

    /// Queue a frame as if it had arrived on `port`.
    pub fn push_rx(&mut self, port: usize, frame: &[u8]) {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.ports[port].rx.push_back(buf);
    }

    /// Frames waiting to be received on `port`.
    pub fn rx_pending(&self, port: usize) -> usize {
        self.ports[port].rx.len()
    }

    /// Take every frame transmitted on `port` so far.
    pub fn take_tx(&mut self, port: usize) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.ports[port].tx)
    }

    /// Recycle transmitted frames on every port into the buffer pool (benchmarks).
    pub fn recycle_tx(&mut self) -> usize {
        let mut n = 0;
        for p in &mut self.ports {
            n += p.tx.len();
            self.pool.append(&mut p.tx);
        }
        n
    }

    fn transmit(&mut self, port: usize, buf: Vec<u8>) {
        let p = &mut self.ports[port];
        if p.tx.len() >= self.tx_capacity {
            self.tx_dropped += 1;
            self.pool.push(buf);
        } else {
            p.tx.push(buf);
        }
    }
}

impl PacketIo for MemIo {
    fn port_count(&self) -> usize {
        self.ports.len()
    }

    fn rx_burst<F>(&mut self, port: usize, f: F) -> usize
    where
        F: FnOnce(&mut [&mut [u8]], &mut [Verdict]),
    {
        let rx = &mut self.ports[port].rx;
        let n = rx.len().min(BATCH);
        if n == 0 {
            return 0;
        }
        self.burst.extend(rx.drain(..n));
        let mut verdicts = [Verdict::Drop; BATCH];
        {
            let mut views: [&mut [u8]; BATCH] = std::array::from_fn(|_| <&mut [u8]>::default());
            for (v, buf) in views.iter_mut().zip(self.burst.iter_mut()) {
                *v = buf.as_mut_slice();
            }
            f(&mut views[..n], &mut verdicts[..n]);
        }
        let mut burst = std::mem::take(&mut self.burst);
        for (buf, verdict) in burst.drain(..).zip(verdicts) {
            match verdict {
                Verdict::Tx(p) => self.transmit(usize::from(p), buf),
                Verdict::Drop => self.pool.push(buf),
            }
        }
        self.burst = burst;
        n
    }

    fn inject(&mut self, port: usize, frame: &[u8]) -> bool {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.transmit(port, buf);
        true
    }

    fn flush(&mut self) {}

    fn wait(&mut self, _timeout: std::time::Duration, _wake: std::os::fd::BorrowedFd<'_>) {}

    fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_verdicts_route_frames() {
        let mut io = MemIo::new(2);
        for i in 0..70u8 {
            io.push_rx(0, &[i; 20]);
        }
        let n = io.rx_burst(0, |frames, verdicts| {
            assert_eq!(frames.len(), BATCH);
            for (i, (f, v)) in frames.iter_mut().zip(verdicts.iter_mut()).enumerate() {
                f[1] = 0xee;
                if i % 2 == 0 {
                    *v = Verdict::Tx(1);
                }
            }
        });
        assert_eq!(n, BATCH);
        assert_eq!(io.rx_pending(0), 6);
        let tx = io.take_tx(1);
        assert_eq!(tx.len(), 32);
        assert_eq!(tx[1][0], 2);
        assert_eq!(tx[1][1], 0xee);
        assert!(io.take_tx(0).is_empty());
    }
}
