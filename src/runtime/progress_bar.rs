//! The progress bar on standard error (file replay): packets, rate, share of bytes read.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::runtime::ingest::Progress;

/// A running progress bar; `finish` clears it.
pub struct ProgressBar {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProgressBar {
    /// Starts the bar if `wanted` and standard error is a terminal.
    pub fn start(progress: Arc<Progress>, wanted: bool) -> ProgressBar {
        let done = Arc::new(AtomicBool::new(false));
        if !wanted || !std::io::stderr().is_terminal() {
            return ProgressBar { done, thread: None };
        }
        let flag = Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || draw(&progress, &flag))
            .ok();
        ProgressBar { done, thread }
    }

    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(progress: &Progress, done: &AtomicBool) {
    let bar = indicatif::ProgressBar::new(1);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    let started = std::time::Instant::now();
    while !done.load(Ordering::Relaxed) {
        let total = progress.total_bytes.load(Ordering::Relaxed).max(1);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        let packets = progress.packets.load(Ordering::Relaxed);
        let rate = packets as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_length(total);
        bar.set_position(bytes.min(total));
        bar.set_message(format!("{packets} packets, {:.2} M packets/s", rate / 1e6));
        std::thread::sleep(Duration::from_millis(200));
    }
    bar.finish_and_clear();
}
