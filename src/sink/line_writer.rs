//! A JSON Lines file written by a thread of its own.
//!
//! The ordered writers run on the first worker of a process, which also does its share
//! of the dataflow; copying every line into the file's buffer and the `write` system
//! calls (about 2.4 KB per flow) would otherwise sit on that worker's critical path.
//! [`LineWriter`] hands batches of finished lines to an I/O thread over a bounded
//! channel (so a slow disk holds the worker back instead of letting lines pile up in
//! memory) and reports the first write error when it is finished.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

/// Batches in flight to the I/O thread at most.
const QUEUE: usize = 16;

/// Lines handed over per batch when they come one at a time.
const BATCH: usize = 512;

use super::spill::LineResult;

/// A file whose lines are written by a thread of its own.
#[derive(Debug)]
pub struct LineWriter {
    path: PathBuf,
    queue: Option<SyncSender<Vec<LineResult>>>,
    thread: Option<JoinHandle<Result<(), String>>>,
    batch: Vec<LineResult>,
}

impl LineWriter {
    /// Creates `path` and writes `header` (a line without its newline), if any.
    pub fn create(path: &Path, header: Option<String>) -> Result<LineWriter, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let (queue, batches) = sync_channel::<Vec<LineResult>>(QUEUE);
        let name = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("flowtide-writer".into())
            .spawn(move || {
                let fail = |e: std::io::Error| format!("cannot write {}: {e}", name.display());
                let mut w = BufWriter::with_capacity(1 << 20, file);
                if let Some(h) = header {
                    w.write_all(h.as_bytes()).map_err(fail)?;
                    w.write_all(b"\n").map_err(fail)?;
                }
                for batch in batches {
                    for line in batch {
                        let line =
                            line.map_err(|e| format!("cannot write {}: {e}", name.display()))?;
                        w.write_all(line.as_bytes()).map_err(fail)?;
                        w.write_all(b"\n").map_err(fail)?;
                    }
                }
                w.flush().map_err(fail)
            })
            .map_err(|e| format!("cannot start the writer of {}: {e}", path.display()))?;
        Ok(LineWriter {
            path: path.to_path_buf(),
            queue: Some(queue),
            thread: Some(thread),
            batch: Vec::new(),
        })
    }

    /// Hands over a batch of lines. Fails (with the I/O thread's error, once it is
    /// known) when the thread has stopped.
    pub fn write_batch(&mut self, lines: Vec<LineResult>) -> Result<(), String> {
        self.flush_batch()?;
        self.send(lines)
    }

    /// Writes one line (collected into batches).
    pub fn write_line(&mut self, line: LineResult) -> Result<(), String> {
        self.batch.push(line);
        if self.batch.len() >= BATCH {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.send(batch)
    }

    fn send(&mut self, lines: Vec<LineResult>) -> Result<(), String> {
        let sent = match self.queue.as_ref() {
            Some(q) => q.send(lines).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread stopped early: its error says why.
            self.join().and_then(|()| {
                Err(format!(
                    "cannot write {}: writer stopped",
                    self.path.display()
                ))
            })
        }
    }

    /// Writes what is left, waits for the file to be complete and flushed, and returns
    /// the first error.
    pub fn finish(mut self) -> Result<(), String> {
        self.flush_batch()?;
        self.join()
    }

    fn join(&mut self) -> Result<(), String> {
        self.queue = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(format!("the writer of {} failed", self.path.display()))),
            None => Ok(()),
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_header_batches_and_lines_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl");
        let mut w = LineWriter::create(&path, Some("h".into())).expect("create");
        w.write_batch(vec![Ok("1".into()), Ok("2".into())])
            .expect("batch");
        for i in 3..=1200 {
            w.write_line(Ok(i.to_string())).expect("line");
        }
        w.write_batch(vec![Ok("last".into())]).expect("batch");
        w.finish().expect("finish");
        let text = std::fs::read_to_string(&path).expect("read");
        let mut expected = vec!["h".to_string()];
        expected.extend((1..=1200).map(|i| i.to_string()));
        expected.push("last".into());
        assert_eq!(text, expected.join("\n") + "\n");
    }

    #[test]
    fn a_record_that_failed_to_serialize_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl");
        let mut w = LineWriter::create(&path, None).expect("create");
        w.write_batch(vec![Ok("1".into()), Err("bad float".into())])
            .expect("handed over");
        let e = w.finish().expect_err("reports the failure");
        assert!(e.contains("bad float"), "{e}");
    }

    #[test]
    fn a_full_disk_is_reported() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let mut w = LineWriter::create(path, None).expect("create");
        let mut result = Ok(());
        for _ in 0..100 {
            result = w.write_batch(vec![Ok("x".repeat(1 << 16))]);
            if result.is_err() {
                break;
            }
        }
        let e = result.and_then(|()| w.finish()).expect_err("ENOSPC");
        assert!(e.contains("No space"), "{e}");
    }
}
