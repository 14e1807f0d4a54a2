//! An output file written a batch of lines at a time with vectored writes.
//!
//! The writer of an ordered output receives every line as its own byte vector, serialized
//! on whichever worker produced the record. Copying each into a write buffer would cost
//! the writing worker a second pass over every byte (the flows file of a 2 M-packet
//! capture is over 100 MB); instead the lines are kept as they are and handed to the
//! kernel as one `writev` per batch, the newline of each line as a slice of its own.

use std::fs::File;
use std::io::{self, IoSlice, Write};

/// Lines per `writev` (two slices each; Linux takes at most 1024 slices per call).
const MAX_LINES: usize = 512;

/// Bytes that may wait before they are written.
const MAX_BYTES: usize = 1 << 20;

/// A file receiving whole lines.
#[derive(Debug)]
pub struct LineFile<W: Write = File> {
    out: W,
    lines: Vec<Vec<u8>>,
    bytes: usize,
}

impl<W: Write> LineFile<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> Self {
        LineFile {
            out,
            lines: Vec::with_capacity(MAX_LINES),
            bytes: 0,
        }
    }

    /// Adds one line (without its newline); written with the next full batch or
    /// [`LineFile::flush`].
    pub fn push(&mut self, line: Vec<u8>) -> io::Result<()> {
        self.bytes += line.len() + 1;
        self.lines.push(line);
        if self.lines.len() >= MAX_LINES || self.bytes >= MAX_BYTES {
            self.write_batch()?;
        }
        Ok(())
    }

    /// Writes every line pushed so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_batch()?;
        self.out.flush()
    }

    fn write_batch(&mut self) -> io::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * self.lines.len());
        for line in &self.lines {
            slices.push(IoSlice::new(line));
            slices.push(IoSlice::new(b"\n"));
        }
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.out.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.lines.clear();
        self.bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, as a kernel may.
    struct Short {
        data: Vec<u8>,
        limit: usize,
    }

    impl Write for Short {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.data.extend_from_slice(&b[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn short_writes_keep_every_byte_in_order() {
        let mut f = LineFile::new(Short {
            data: Vec::new(),
            limit: 7,
        });
        let mut expected = String::new();
        for i in 0..2000 {
            let line = "x".repeat(i % 37) + &i.to_string();
            expected.push_str(&line);
            expected.push('\n');
            f.push(line.into_bytes()).expect("push");
        }
        f.flush().expect("flush");
        assert_eq!(String::from_utf8(f.out.data).expect("utf8"), expected);
    }

    #[test]
    fn a_writer_that_takes_nothing_is_an_error() {
        let mut f = LineFile::new(Short {
            data: Vec::new(),
            limit: 0,
        });
        f.push(b"a".to_vec()).expect("buffered");
        assert_eq!(
            f.flush().expect_err("no progress").kind(),
            io::ErrorKind::WriteZero
        );
    }
}
