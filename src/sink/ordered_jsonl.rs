//! A timely sink that writes records as JSON Lines in a canonical order.
//!
//! Records are routed to the first worker of their process, which holds them until the
//! frontier passes their timely time and then writes them sorted by the caller's order
//! key. Because every record's order key is at least its predecessors' (the operators
//! upstream emit in event-time order across timely times), each file is in canonical
//! order as a whole, and one process's output is independent of its worker count.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;

use serde::Serialize;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Operator;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// Errors a sink met (reported at the end of the run).
pub type SinkErrors = Rc<RefCell<Vec<String>>>;

/// Writes a stream to a JSON Lines file on the first worker of each process.
pub trait WriteOrderedJsonl<'scope, D> {
    /// Writes every record as one JSON line (`to_line` gives the serializable form) to
    /// `path`, in ascending `order` within each timely time, on worker
    /// `first_local_worker` of this process (whose threads are `threads`). Returns an
    /// empty stream whose frontier tells when the writing is done.
    fn write_ordered_jsonl<K, L, O, F>(
        self,
        path: PathBuf,
        threads: usize,
        order: O,
        to_line: F,
        errors: SinkErrors,
    ) -> StreamVec<'scope, u64, ()>
    where
        K: Ord,
        L: Serialize,
        O: Fn(&D) -> K + 'static,
        F: Fn(&D) -> L + 'static;
}

impl<'scope, D: ExchangeData + Clone> WriteOrderedJsonl<'scope, D> for StreamVec<'scope, u64, D> {
    fn write_ordered_jsonl<K, L, O, F>(
        self,
        path: PathBuf,
        threads: usize,
        order: O,
        to_line: F,
        errors: SinkErrors,
    ) -> StreamVec<'scope, u64, ()>
    where
        K: Ord,
        L: Serialize,
        O: Fn(&D) -> K + 'static,
        F: Fn(&D) -> L + 'static,
    {
        let scope = self.scope();
        let index = scope.index();
        let writer_index = index - index % threads;
        let target = writer_index as u64;
        self.map(move |d| (target, d))
            .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Exchange::new(|(t, _): &(u64, D)| *t),
                "WriteJsonl",
                move |cap, _info| {
                    // Held until everything is written, so that a probe on the (empty) output
                    // reports completion only after the file is complete.
                    let mut cap = Some(cap);
                    let mut out: Option<BufWriter<File>> = None;
                    if index == writer_index {
                        match File::create(&path) {
                            Ok(f) => out = Some(BufWriter::with_capacity(1 << 20, f)),
                            Err(e) => errors
                                .borrow_mut()
                                .push(format!("cannot create {}: {e}", path.display())),
                        }
                    }
                    let mut pending: BTreeMap<u64, Vec<D>> = BTreeMap::new();
                    let mut line = Vec::with_capacity(1024);
                    move |(input, frontier), _output| {
                        input.for_each(|time, data| {
                            let t = time.least().copied().unwrap_or(0);
                            pending
                                .entry(t)
                                .or_default()
                                .extend(data.drain(..).map(|(_, d)| d));
                        });
                        while let Some(entry) = pending.first_entry() {
                            if frontier.less_equal(entry.key()) {
                                break;
                            }
                            let mut batch = entry.remove();
                            batch.sort_by_key(|d| order(d));
                            if let Some(w) = out.as_mut() {
                                for d in &batch {
                                    line.clear();
                                    let res = serde_json::to_writer(&mut line, &to_line(d))
                                        .map_err(std::io::Error::other)
                                        .and_then(|()| {
                                            line.push(b'\n');
                                            w.write_all(&line)
                                        });
                                    if let Err(e) = res {
                                        errors
                                            .borrow_mut()
                                            .push(format!("cannot write {}: {e}", path.display()));
                                        out = None;
                                        break;
                                    }
                                }
                            }
                        }
                        match frontier.frontier().iter().min() {
                            Some(t) => {
                                if let Some(c) = cap.as_mut() {
                                    if c.time() < t {
                                        c.downgrade(t);
                                    }
                                }
                            }
                            None => {
                                if let Some(mut w) = out.take() {
                                    if let Err(e) = w.flush() {
                                        errors
                                            .borrow_mut()
                                            .push(format!("cannot write {}: {e}", path.display()));
                                    }
                                }
                                cap = None;
                            }
                        }
                    }
                },
            )
    }
}
