//! A sorter for output lines that keeps memory bounded: lines wait in memory, grouped by
//! the event time their key starts with, until they may be written (each group is sorted
//! once, when it goes); when too many wait (e.g. every flow still open at the end of a
//! capture, all due at once), they are written to disk as a sorted run, and the runs are
//! merged with what is in memory when the output is finished.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::ordered_jsonl::TimedKey;

/// A line to write (UTF-8 by construction: every writer serializes `str`s and ASCII), or
/// why the record had none.
pub type LineResult = Result<Vec<u8>, String>;

/// What a waiting line costs besides its text, about: its key and the text's handle in
/// its group's vector (96 bytes for a flow's), twice that for the vector's growth, and
/// the allocator's header of the text.
const LINE_OVERHEAD: usize = 200;

/// The memory a waiting line holds: its text's allocation and [`LINE_OVERHEAD`].
fn held_bytes(line: &LineResult) -> usize {
    LINE_OVERHEAD + line.as_ref().map_or_else(String::capacity, Vec::capacity)
}

/// The memory that waiting lines may take in one process, shared by all its writers
/// (clones share it): records due at one time in great numbers (every flow still open
/// at the end of a capture, then their windows) fill one writer after another, and one
/// budget for all keeps the total bounded without making a lone full writer spill early.
#[derive(Clone, Debug)]
pub struct LineBudget {
    held: Arc<AtomicUsize>,
    limit: usize,
}

impl LineBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        LineBudget {
            held: Arc::default(),
            limit,
        }
    }

    /// Bytes held by all writers now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes; returns the total held.
    fn add(&self, n: usize) -> usize {
        self.held.fetch_add(n, Ordering::Relaxed).saturating_add(n)
    }

    fn sub(&self, n: usize) {
        // Never below zero: every writer subtracts only what it added.
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| {
                Some(h.saturating_sub(n))
            });
    }

    /// Whether a writer holding `own` bytes, with `total` held by all, should spill: when
    /// it alone passes the budget, or all together do and it holds at least an eighth of
    /// it (so that a writer with a few lines never spills tiny runs because another is
    /// full; the total stays under the budget plus an eighth per other writer).
    fn should_spill(&self, own: usize, total: usize) -> bool {
        own > self.limit || (total > self.limit && own >= self.limit / 8)
    }
}

/// Lines waiting to be written, grouped by the event time their key starts with, spilled
/// to sorted runs on disk beyond a memory limit. A group is sorted by (key, line) when it
/// is written or spilled; keeping groups instead of one ordered map of keys makes a push
/// an append (a capture's last flows all share a handful of end times).
#[derive(Debug)]
pub struct SpillingSorter<K> {
    memory: BTreeMap<u64, Vec<(K, LineResult)>>,
    /// Bytes of `memory`, as counted in `budget`.
    memory_bytes: usize,
    budget: LineBudget,
    run_prefix: PathBuf,
    runs: Vec<PathBuf>,
}

impl<K: TimedKey + Serialize + DeserializeOwned> SpillingSorter<K> {
    /// A sorter whose runs are files named after `run_prefix` (e.g. `out/.flows.jsonl`),
    /// spilling when its waiting lines pass their share of `budget`.
    pub fn new(run_prefix: PathBuf, budget: LineBudget) -> Self {
        SpillingSorter {
            memory: BTreeMap::new(),
            memory_bytes: 0,
            budget,
            run_prefix,
            runs: Vec::new(),
        }
    }

    /// Adds a line; may write a run to disk.
    pub fn push(&mut self, key: K, line: LineResult) -> std::io::Result<()> {
        let bytes = held_bytes(&line);
        self.memory_bytes += bytes;
        let total = self.budget.add(bytes);
        self.memory
            .entry(key.event_time())
            .or_default()
            .push((key, line));
        if self.budget.should_spill(self.memory_bytes, total) {
            self.spill()?;
        }
        Ok(())
    }

    /// True when lines have been spilled: then nothing can be written before
    /// [`SpillingSorter::finish`] (a run may hold smaller keys).
    pub fn has_runs(&self) -> bool {
        !self.runs.is_empty()
    }

    /// Removes and returns, sorted by (key, line), the lines of the earliest event time
    /// if it is before `horizon` (`None`: every time is) and nothing was spilled. No line
    /// of that time may come later: the caller's frontier has passed it.
    pub fn pop_ready(&mut self, horizon: Option<u64>) -> Option<Vec<LineResult>> {
        if self.has_runs() {
            return None;
        }
        let entry = self.memory.first_entry()?;
        if horizon.is_some_and(|h| *entry.key() >= h) {
            return None;
        }
        let mut group = entry.remove();
        let bytes: usize = group.iter().map(|(_, l)| held_bytes(l)).sum();
        self.memory_bytes = self.memory_bytes.saturating_sub(bytes);
        self.budget.sub(bytes);
        sort_group(&mut group);
        Some(group.into_iter().map(|(_, l)| l).collect())
    }

    fn spill(&mut self) -> std::io::Result<()> {
        let path = run_path(&self.run_prefix, self.runs.len());
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        self.runs.push(path);
        for (_, mut group) in std::mem::take(&mut self.memory) {
            sort_group(&mut group);
            for (key, line) in &group {
                write_record(&mut w, key, line)?;
            }
        }
        self.budget.sub(self.memory_bytes);
        self.memory_bytes = 0;
        w.flush()
    }

    /// Writes every remaining line, in key order, with `write`, and removes the runs.
    pub fn finish(
        mut self,
        mut write: impl FnMut(LineResult) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let result = self.merge(&mut write);
        for run in &self.runs {
            let _ = std::fs::remove_file(run);
        }
        result
    }

    fn merge(
        &mut self,
        write: &mut impl FnMut(LineResult) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self.runs.is_empty() {
            self.budget.sub(self.memory_bytes);
            self.memory_bytes = 0;
            for (_, mut group) in std::mem::take(&mut self.memory) {
                sort_group(&mut group);
                for (_, l) in group {
                    write(l)?;
                }
            }
            return Ok(());
        }
        // The memory part becomes one more run, so that every source is sorted by
        // (key, line) and the heap can merge them.
        if !self.memory.is_empty() {
            self.spill()?;
        }
        let mut readers = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            readers.push(BufReader::with_capacity(1 << 16, File::open(run)?));
        }
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some((k, l)) = next_record::<K>(r)? {
                heap.push(Reverse((k, l, i)));
            }
        }
        while let Some(Reverse((_, line, i))) = heap.pop() {
            write(line)?;
            if let Some((k, l)) = next_record::<K>(&mut readers[i])? {
                heap.push(Reverse((k, l, i)));
            }
        }
        Ok(())
    }
}

impl<K> Drop for SpillingSorter<K> {
    fn drop(&mut self) {
        // Lines never written (a failed output) leave the shared budget with the sorter.
        self.budget.sub(self.memory_bytes);
    }
}

/// Sorts one event time's lines by (key, line): lines of equal keys by content, so that
/// the output never depends on arrival order.
fn sort_group<K: Ord>(group: &mut [(K, LineResult)]) {
    if group.len() > 1 {
        group.sort_unstable();
    }
}

fn run_path(prefix: &Path, n: usize) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(format!(".run{n}"));
    PathBuf::from(name)
}

/// The longest line a run file may hold (a record's line is far shorter; a longer length
/// means a damaged file, not an allocation to attempt).
const MAX_RUN_LINE: usize = 1 << 30;

/// Writes one record of a run: the key (bincode), then the line as a tag (0: a line,
/// 1: an error), its length (u64, little-endian) and its bytes as they are.
fn write_record<K: Serialize>(
    w: &mut impl Write,
    key: &K,
    line: &LineResult,
) -> std::io::Result<()> {
    bincode::serialize_into(&mut *w, key).map_err(std::io::Error::other)?;
    let (tag, bytes) = match line {
        Ok(b) => (0u8, b.as_slice()),
        Err(e) => (1u8, e.as_bytes()),
    };
    w.write_all(&[tag])?;
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(bytes)
}

/// Reads the next record of a run ([`write_record`]'s format); `None` at its end.
fn next_record<K: DeserializeOwned>(
    r: &mut BufReader<File>,
) -> std::io::Result<Option<(K, LineResult)>> {
    let key = match bincode::deserialize_from::<_, K>(&mut *r) {
        Ok(k) => k,
        Err(e) => {
            return match *e {
                bincode::ErrorKind::Io(ref io)
                    if io.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    Ok(None)
                }
                _ => Err(std::io::Error::other(e)),
            }
        }
    };
    let mut head = [0u8; 9];
    r.read_exact(&mut head)?;
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[1..]);
    let len = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .filter(|&n| n <= MAX_RUN_LINE)
        .ok_or_else(|| std::io::Error::other("a line too long in a run file"))?;
    let mut bytes = vec![0u8; len];
    r.read_exact(&mut bytes)?;
    let line = match head[0] {
        0 => Ok(bytes),
        1 => Err(String::from_utf8_lossy(&bytes).into_owned()),
        t => {
            return Err(std::io::Error::other(format!(
                "bad record tag {t} in a run file"
            )))
        }
    };
    Ok(Some((key, line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: usize, keys: &[(u64, u32)]) -> (Vec<String>, usize) {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = SpillingSorter::new(dir.path().join(".out"), LineBudget::new(limit));
        for (t, k) in keys {
            s.push((*t, *k), Ok(format!("{t}-{k}").into_bytes()))
                .expect("push");
        }
        let spilled = s.runs.len();
        let mut out = Vec::new();
        s.finish(|l| {
            out.push(String::from_utf8(l.expect("line")).expect("utf8"));
            Ok(())
        })
        .expect("finish");
        let left = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(left, 0, "runs are removed");
        (out, spilled)
    }

    #[test]
    fn spilled_runs_merge_into_the_same_order() {
        let mut x = 7u64;
        let keys: Vec<(u64, u32)> = (0..5_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 300, i % 7)
            })
            .collect();
        let (in_memory, none) = run(usize::MAX, &keys);
        let (spilled, runs) = run(4_000, &keys);
        assert_eq!(none, 0);
        assert!(runs > 10, "{runs}");
        assert_eq!(spilled, in_memory);
        let mut sorted = keys.clone();
        sorted.sort();
        let want: Vec<String> = sorted.iter().map(|(t, k)| format!("{t}-{k}")).collect();
        assert_eq!(in_memory, want);
    }

    #[test]
    fn writers_share_one_budget() {
        let dir = tempfile::tempdir().expect("tmp");
        let line = |n: usize| Ok::<_, String>(vec![b'x'; n]);
        let budget = LineBudget::new(8 * (LINE_OVERHEAD + 1000));
        let mut full = SpillingSorter::new(dir.path().join(".a"), budget.clone());
        let mut small = SpillingSorter::new(dir.path().join(".b"), budget.clone());
        // One writer alone may use the whole budget.
        for i in 0..8u64 {
            full.push((i, 0u32), line(1000)).expect("push");
        }
        assert!(!full.has_runs());
        // Another with a few lines past the total does not spill them as tiny runs...
        small.push((0u64, 0u32), line(10)).expect("push");
        assert!(!small.has_runs());
        // ...until it holds an eighth of the budget.
        small.push((1, 0), line(1000)).expect("push");
        assert!(small.has_runs());
        assert_eq!(budget.held(), 8 * (LINE_OVERHEAD + 1000));
        // A writer's own share goes when it spills, writes, or is dropped.
        full.push((9, 0), line(2000)).expect("push");
        assert!(full.has_runs());
        assert_eq!(budget.held(), 0);
        small.push((2, 0), line(10)).expect("push");
        assert!(budget.held() > 0);
        drop(small);
        assert_eq!(budget.held(), 0);
        let mut out = 0;
        full.finish(|_| {
            out += 1;
            Ok(())
        })
        .expect("finish");
        assert_eq!(out, 9);
    }

    #[test]
    fn ready_groups_come_by_event_time_sorted_by_key_then_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = SpillingSorter::new(dir.path().join(".out"), LineBudget::new(usize::MAX));
        let line = |t: &str| Ok::<_, String>(t.as_bytes().to_vec());
        for (t, k, l) in [
            (5u64, 1u32, "e"),
            (3, 9, "c"),
            (3, 2, "b"),
            (7, 0, "f"),
            (3, 2, "a"),
        ] {
            s.push((t, k), line(l)).expect("push");
        }
        // Nothing before 3 yet; at 4, the lines of time 3 by (key, line).
        assert!(s.pop_ready(Some(3)).is_none());
        assert_eq!(
            s.pop_ready(Some(4)),
            Some(vec![line("a"), line("b"), line("c")])
        );
        assert!(s.pop_ready(Some(4)).is_none());
        assert_eq!(s.pop_ready(Some(8)), Some(vec![line("e")]));
        assert_eq!(s.pop_ready(None), Some(vec![line("f")]));
        assert!(s.pop_ready(None).is_none());
        assert_eq!(s.budget.held(), 0);
    }

    #[test]
    fn spilled_errors_come_back_as_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = SpillingSorter::new(dir.path().join(".out"), LineBudget::new(1));
        s.push((2u64, 0u32), Ok("é\u{1f600}".as_bytes().to_vec()))
            .expect("push");
        s.push((1, 0), Err("no line".into())).expect("push");
        assert!(s.has_runs());
        let mut out = Vec::new();
        s.finish(|l| {
            out.push(l);
            Ok(())
        })
        .expect("finish");
        assert_eq!(
            out,
            vec![
                Err("no line".to_string()),
                Ok("é\u{1f600}".as_bytes().to_vec())
            ]
        );
    }

    #[test]
    fn nothing_is_ready_once_spilled() {
        let dir = tempfile::tempdir().expect("tmp");
        // Room for one short line and its overhead.
        let mut s = SpillingSorter::new(
            dir.path().join(".out"),
            LineBudget::new(LINE_OVERHEAD + 100),
        );
        s.push((1u64, 0u32), Ok(b"a".to_vec())).expect("push");
        assert!(s.pop_ready(None).is_some());
        for i in 0..10 {
            s.push((2, i), Ok(vec![b'b'; 20])).expect("push");
        }
        assert!(s.has_runs());
        assert!(s.pop_ready(None).is_none());
    }
}
