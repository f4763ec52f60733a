//! The log's way out: formatted lines go into a bounded queue and a writer thread of their own
//! writes them to stdout, so a shard never waits on a slow or stalled reader. When the queue is
//! full the line is dropped and counted, never waited for. Line buffers are recycled through a
//! small pool, so a steady log allocates nothing per line.
//!
//! Why not `tracing-appender`'s `non_blocking` (lossy), which does the same queueing: its
//! guard, dropped at exit while the queue is full, reports that with `println!`, which blocks
//! for good behind the stalled stdout the queue is there to survive (the relay would not
//! exit); it also allocates a new buffer per line and cannot say how many lines were left
//! unwritten at exit.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// Line buffers larger than this are freed after use instead of going back to the pool.
const POOLED_LINE_BYTES: usize = 4096;

/// What the writer thread is asked to do.
enum Msg {
    Line(Vec<u8>),
    /// Flush the output and say so on the drain's `flushed` channel.
    Flush,
}

/// The producers' side, given to the formatter as its writer: each event's writer is one line.
#[derive(Clone)]
pub struct LineQueue {
    lines: Sender<Msg>,
    pool: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    dropped: Arc<AtomicU64>,
}

/// The writer thread's handle: how many lines were dropped, and the flush at exit.
#[derive(Clone)]
pub struct QueueDrain {
    lines: Sender<Msg>,
    flushed: Receiver<()>,
    dropped: Arc<AtomicU64>,
}

/// Starts a thread writing to `out` the lines of a queue that holds at most `capacity` (at
/// least 1); the pool keeps up to `pool` buffers for reuse.
pub fn spawn(
    out: impl Write + Send + 'static,
    capacity: usize,
    pool: usize,
) -> io::Result<(LineQueue, QueueDrain)> {
    let (lines, queued) = bounded(capacity.max(1));
    let pool = bounded(pool);
    let (flushed_tx, flushed) = bounded(1);
    let dropped = Arc::new(AtomicU64::new(0));
    let recycle = pool.0.clone();
    super::thread::spawn("log-writer", move || {
        write_lines(out, queued, recycle, flushed_tx)
    })?;
    Ok((
        LineQueue {
            lines: lines.clone(),
            pool,
            dropped: dropped.clone(),
        },
        QueueDrain {
            lines,
            flushed,
            dropped,
        },
    ))
}

/// The writer thread: writes lines in order, flushing whenever the queue runs empty, until
/// every producer is gone. A failing output (a closed stdout) loses the line, nothing more.
fn write_lines(
    mut out: impl Write,
    queued: Receiver<Msg>,
    recycle: Sender<Vec<u8>>,
    flushed: Sender<()>,
) {
    for msg in queued.iter() {
        match msg {
            Msg::Line(line) => {
                let _ = out.write_all(&line);
                if line.capacity() <= POOLED_LINE_BYTES {
                    let _ = recycle.try_send(line);
                }
                if queued.is_empty() {
                    let _ = out.flush();
                }
            }
            Msg::Flush => {
                let _ = out.flush();
                let _ = flushed.try_send(());
            }
        }
    }
}

impl LineQueue {
    /// A buffer for one line, from the pool when it has one.
    fn buffer(&self) -> Vec<u8> {
        let mut line = self.pool.1.try_recv().unwrap_or_default();
        line.clear();
        line
    }

    /// Queues one line, or drops and counts it if the queue is full.
    fn push(&self, line: Vec<u8>) {
        match self.lines.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(msg) | TrySendError::Disconnected(msg)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if let Msg::Line(line) = msg {
                    let _ = self.pool.0.try_send(line);
                }
            }
        }
    }
}

/// The writer for one event: collects what the formatter writes and queues it as one line
/// when dropped.
pub struct LineWriter<'a> {
    queue: &'a LineQueue,
    line: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.push(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            queue: self,
            line: self.buffer(),
        }
    }
}

impl QueueDrain {
    /// Lines dropped because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for every line queued so far to be written and flushed. Returns
    /// the number of lines still queued if the output did not take them in time (a reader
    /// that stopped reading), which the caller reports elsewhere; the process can then exit.
    pub fn flush(&self, timeout: Duration) -> Result<(), usize> {
        let deadline = Instant::now() + timeout;
        let stalled = || self.lines.len();
        // An acknowledgement left over from an earlier flush that timed out says nothing.
        while self.flushed.try_recv().is_ok() {}
        if self.lines.send_deadline(Msg::Flush, deadline).is_err() {
            return Err(stalled());
        }
        match self.flushed.recv_deadline(deadline) {
            Ok(()) => Ok(()),
            Err(_) => Err(stalled()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// Whether the output is stalled, and what it was given.
    type Output = Mutex<(bool, Vec<u8>)>;

    /// An output that blocks while stalled and collects what it is given.
    #[derive(Clone, Default)]
    struct Gate {
        state: Arc<(Output, Condvar)>,
    }

    impl Gate {
        fn stall(&self, on: bool) {
            self.state.0.lock().unwrap().0 = on;
            self.state.1.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8(self.state.0.lock().unwrap().1.clone()).unwrap()
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cond) = &*self.state;
            let mut state = cond.wait_while(lock.lock().unwrap(), |s| s.0).unwrap();
            state.1.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_and_flush_waits_for_them() {
        let out = Gate::default();
        let (queue, drain) = spawn(out.clone(), 64, 8).unwrap();
        for i in 0..50 {
            writeln!(queue.make_writer(), "line {i}").unwrap();
        }
        drain.flush(Duration::from_secs(10)).unwrap();
        let expected: String = (0..50).map(|i| format!("line {i}\n")).collect();
        assert_eq!(out.text(), expected);
        assert_eq!(drain.dropped(), 0);
    }

    #[test]
    fn a_stalled_output_drops_and_counts_lines_instead_of_blocking() {
        let out = Gate::default();
        out.stall(true);
        let (queue, drain) = spawn(out.clone(), 16, 8).unwrap();
        let started = Instant::now();
        for i in 0..10_000 {
            writeln!(queue.make_writer(), "line {i}").unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never waits");
        // The writer holds one line in its hand, the queue 16; the rest are dropped.
        let dropped = drain.dropped();
        assert!((10_000 - 17..=10_000 - 16).contains(&dropped), "{dropped}");
        // The exit flush gives up at its deadline and says what was left.
        let left = drain.flush(Duration::from_millis(200)).unwrap_err();
        assert!((15..=16).contains(&left), "{left}");
        // A reader that comes back gets the queued lines, in order.
        out.stall(false);
        drain.flush(Duration::from_secs(10)).unwrap();
        let text = out.text();
        assert!(text.starts_with("line 0\nline 1\n"), "{text}");
        assert_eq!(text.lines().count() as u64, 10_000 - dropped);
    }
}
