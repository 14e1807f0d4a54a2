//! A timely sink that writes records as JSON Lines in a canonical order.
//!
//! Records are routed to one worker of their process (the file's writer), which holds
//! them sorted by the caller's order key. An order key starts with an event time `e`
//! ([`TimedKey`]), and every operator upstream emits a record at a timely time at or
//! before its `e` (a flow at or before its end, a window before its end, an event at or
//! before its time). So
//! once the frontier has passed `e`, no record with a smaller key can still come, and
//! everything up to there is written. Each file is thus in canonical order as a whole,
//! whatever the timing of the workers, and one process's output is independent of its
//! worker count.

use std::cell::RefCell;
use std::fs::File;
use std::path::PathBuf;
use std::rc::Rc;

use serde::Serialize;

use super::line_file::LineFile;
use super::spill::{LineBudget, SpillingSorter};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Operator;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// An order key that starts with an event time: the record is emitted at a timely time
/// at or before it.
pub trait TimedKey: Ord {
    /// The event time the key starts with.
    fn event_time(&self) -> u64;
}

macro_rules! timed_tuples {
    ($(($($t:ident),+)),+ $(,)?) => {
        $(impl<$($t: Ord),+> TimedKey for (u64, $($t),+) {
            fn event_time(&self) -> u64 {
                self.0
            }
        })+
    };
}

timed_tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
);

/// Errors a sink met (reported at the end of the run).
pub type SinkErrors = Rc<RefCell<Vec<String>>>;

/// What the writers of one worker share: where they report errors, and the memory
/// budget of waiting lines shared by every writer of the process.
#[derive(Clone, Debug)]
pub struct Writers {
    /// Errors met.
    pub errors: SinkErrors,
    /// The process's budget of waiting lines.
    pub budget: LineBudget,
}

/// Writes a stream to a JSON Lines file on one worker of each process.
pub trait WriteOrderedJsonl<'scope, D> {
    /// Writes every record as one JSON line (`to_line` gives the serializable form) to
    /// `path`, in ascending `order` within each timely time, on worker `writer` (an
    /// index of this process's workers; each file may have its own, which spreads the
    /// writing). Each record is serialized on the worker that produced it; the writer
    /// only sorts and writes. Returns an empty stream whose
    /// frontier tells when the writing is done.
    fn write_ordered_jsonl<K, L, O, F>(
        self,
        path: PathBuf,
        writer: usize,
        order: O,
        to_line: F,
        writers: &Writers,
    ) -> StreamVec<'scope, u64, ()>
    where
        K: TimedKey + ExchangeData,
        L: Serialize,
        O: Fn(&D) -> K + 'static,
        F: Fn(&D) -> L + 'static;

    /// Like [`WriteOrderedJsonl::write_ordered_jsonl`], with the caller's own line format:
    /// `to_line` renders a record as the bytes of one line (UTF-8, without the newline),
    /// and `header`, if any, is written first.
    fn write_ordered_lines<K, O, F>(
        self,
        path: PathBuf,
        writer: usize,
        order: O,
        to_line: F,
        header: Option<String>,
        writers: &Writers,
    ) -> StreamVec<'scope, u64, ()>
    where
        K: TimedKey + ExchangeData,
        O: Fn(&D) -> K + 'static,
        F: Fn(&D) -> Result<Vec<u8>, String> + 'static;
}

/// A serialized record on its way to the writer: (writer, order key, JSON line).
type Line<K> = (u64, K, Result<Vec<u8>, String>);

impl<'scope, D: ExchangeData + Clone> WriteOrderedJsonl<'scope, D> for StreamVec<'scope, u64, D> {
    fn write_ordered_jsonl<K, L, O, F>(
        self,
        path: PathBuf,
        writer: usize,
        order: O,
        to_line: F,
        writers: &Writers,
    ) -> StreamVec<'scope, u64, ()>
    where
        K: TimedKey + ExchangeData,
        L: Serialize,
        O: Fn(&D) -> K + 'static,
        F: Fn(&D) -> L + 'static,
    {
        // Size each line's buffer by the previous line, so a record is serialized into
        // one allocation instead of a growing string.
        let hint = std::cell::Cell::new(256usize);
        self.write_ordered_lines(
            path,
            writer,
            order,
            move |d| {
                let mut buf = Vec::with_capacity(hint.get() + 64);
                super::json_line::write(&to_line(d), &mut buf)?;
                hint.set(buf.len());
                Ok(buf)
            },
            None,
            writers,
        )
    }

    fn write_ordered_lines<K, O, F>(
        self,
        path: PathBuf,
        writer: usize,
        order: O,
        to_line: F,
        header: Option<String>,
        writers: &Writers,
    ) -> StreamVec<'scope, u64, ()>
    where
        K: TimedKey + ExchangeData,
        O: Fn(&D) -> K + 'static,
        F: Fn(&D) -> Result<Vec<u8>, String> + 'static,
    {
        let budget = writers.budget.clone();
        let errors = Rc::clone(&writers.errors);
        let scope = self.scope();
        let index = scope.index();
        let writer_index = writer;
        let target = writer_index as u64;
        self.map(move |d| {
            let line = to_line(&d);
            (target, order(&d), line)
        })
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Exchange::new(|(t, _, _): &Line<K>| *t),
            "WriteOrdered",
            move |cap, _info| {
                // Held until everything is written, so that a probe on the (empty) output
                // reports completion only after the file is complete.
                let mut cap = Some(cap);
                let mut out: Option<LineFile> = None;
                if index == writer_index {
                    match File::create(&path) {
                        Ok(f) => {
                            let mut w = LineFile::new(f);
                            let head = header.clone().map_or(Ok(()), |h| w.push(h.into_bytes()));
                            match head {
                                Ok(()) => out = Some(w),
                                Err(e) => errors
                                    .borrow_mut()
                                    .push(format!("cannot write {}: {e}", path.display())),
                            }
                        }
                        Err(e) => errors
                            .borrow_mut()
                            .push(format!("cannot create {}: {e}", path.display())),
                    }
                }
                let prefix = spill_prefix(&path);
                let mut pending = Some(SpillingSorter::<K>::new(prefix, budget.clone()));
                move |(input, frontier), _output| {
                    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
                    input.for_each(|_time, data| {
                        for (_, k, line) in data.drain(..) {
                            if let Some(p) = pending.as_mut() {
                                if let Err(e) = p.push(k, line) {
                                    errors.borrow_mut().push(fail(e));
                                    pending = None;
                                }
                            }
                        }
                    });
                    let horizon = frontier.frontier().iter().min().copied();
                    if let Some(p) = pending.as_mut() {
                        while let Some(lines) = p.pop_ready(horizon) {
                            if let Some(w) = out.as_mut() {
                                if let Err(e) = write_lines(w, lines) {
                                    errors.borrow_mut().push(fail(e));
                                    out = None;
                                }
                            }
                        }
                    }
                    match horizon {
                        Some(t) => {
                            if let Some(c) = cap.as_mut() {
                                if *c.time() < t {
                                    c.downgrade(&t);
                                }
                            }
                        }
                        None => {
                            let finishing = std::time::Instant::now();
                            if let Some(p) = pending.take() {
                                let result = match out.as_mut() {
                                    Some(w) => p.finish(|l| write_lines(w, [l])),
                                    None => p.finish(|_| Ok(())),
                                };
                                if let Err(e) = result {
                                    errors.borrow_mut().push(fail(e));
                                }
                            }
                            if let Some(mut w) = out.take() {
                                if let Err(e) = w.flush() {
                                    errors.borrow_mut().push(fail(e));
                                }
                                tracing::debug!(
                                    file = %path.display(),
                                    final_write_s = finishing.elapsed().as_secs_f64(),
                                    "output complete"
                                );
                            }
                            cap = None;
                        }
                    }
                }
            },
        )
    }
}

/// Run files of `out/flows.jsonl` are `out/.flows.jsonl.runN`.
fn spill_prefix(path: &std::path::Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}"))
}

/// Writes serialized lines; a record that could not be serialized is an error.
fn write_lines(
    w: &mut LineFile,
    batch: impl IntoIterator<Item = Result<Vec<u8>, String>>,
) -> std::io::Result<()> {
    for line in batch {
        w.push(line.map_err(std::io::Error::other)?)?;
    }
    Ok(())
}
