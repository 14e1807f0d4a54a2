//! `flowtide analyze`: the worker loop that reads feeds into the dataflow and writes the
//! outputs.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use flowtide_dataflows::alert::Alert;
use flowtide_dataflows::baseline::DetectConfig;
use flowtide_dataflows::flow::FlowRecord;
use flowtide_dataflows::operators::{
    fragment_arrival, ConnectionAlerts, Detect, FlowTable, FlowTableConfig, FragAlerts, FragCount,
    Reassemble, RuleAlerts, UnfinishedFragments, Windows, WindowsState,
};
use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::ReassemblyEvent;
use flowtide_dataflows::window::{WindowConfig, WindowRecord};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::vec::{Broadcast, Filter};
use timely::dataflow::operators::{Concat, Exchange, Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::worker::Worker;

use crate::capture::pcap_file::CaptureFile;
use crate::capture::{CaptureError, FrameSource};
use crate::cli::AnalyzeArgs;
use crate::decode::{DecodeConfig, Decoder};
use crate::runtime::backpressure::{self, InFlight};
use crate::runtime::config::ClusterShape;
use crate::runtime::detect_config::detect_config;
use crate::runtime::feeds::{FeedKind, FeedSpec, OpenOptions};
use crate::runtime::ingest::{
    AssignedFeed, FeedSource, FillStatus, Ingest, IngestConfig, Progress,
};
use crate::runtime::progress_bar::ProgressBar;
use crate::runtime::shared_file::SharedFile;
use crate::runtime::stats::{FeedCounters, WorkerReport};
use crate::sink::alert_json::AlertLine;
use crate::sink::flow_json::FlowLine;
use crate::sink::ordered_jsonl::{SinkErrors, WriteOrderedJsonl, Writers};
use crate::sink::reassembly_json::EventLine;
use crate::sink::spill::LineBudget;
use crate::sink::summary::{RunSettings, Summary};
use crate::sink::window_json::WindowLine;

/// Frames read between two steps of the worker.
const BATCH: usize = 4096;

/// Everything the workers of this process share.
struct Shared {
    args: AnalyzeArgs,
    shape: ClusterShape,
    feeds: Vec<FeedSpec>,
    /// Per feed: the file shared by this process's workers, opened by the first worker
    /// that gets there (`Ok(None)`: not mapped, every worker reads it on its own).
    files: Vec<SharedSlot>,
    open: OpenOptions,
    flow_config: FlowTableConfig,
    detect: DetectConfig,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    /// The memory the output writers of this process may fill with waiting lines.
    line_budget: LineBudget,
    started_ns: u64,
    started: Instant,
}

/// A capture file shared by the workers of a process, once opened.
type SharedSlot = OnceLock<Result<Option<Arc<SharedFile>>, CaptureError>>;

/// Lines waiting to be written beyond this much memory in one process go to sorted runs
/// on disk (only when very many records become due at one time, as every flow still
/// open at the end of a capture does; otherwise lines are written as the frontier
/// passes them).
const LINE_BUDGET_BYTES: usize = 64 << 20;

/// Runs `flowtide analyze` to completion (or until interrupted).
pub fn run(args: AnalyzeArgs) -> Result<()> {
    let shape = ClusterShape::new(
        usize::from(args.workers),
        usize::from(args.processes),
        usize::from(args.process),
        args.hostfile.as_deref(),
    )?;
    let mut feeds: Vec<FeedSpec> = args.read.iter().map(|p| FeedSpec::file(p)).collect();
    feeds.extend(args.interface.iter().map(|i| FeedSpec::live(i)));
    if feeds.is_empty() && shape.processes == 1 {
        bail!("nothing to analyze: name a capture with -r FILE or an interface with -i IFACE");
    }
    if feeds.iter().filter(|f| f.kind == FeedKind::Stdin).count() > 1 {
        bail!("standard input (-r -) can be read only once");
    }
    let open = OpenOptions {
        filter: args.filter.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
    };
    let flow_config = args.flow_table_config().map_err(anyhow::Error::msg)?;
    let detect = detect_config(&args)?;
    preflight(&feeds, &open)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handler(Arc::clone(&stop))?;
    let progress = Arc::new(Progress::default());
    let bar = ProgressBar::start(
        Arc::clone(&progress),
        !args.quiet && feeds.iter().any(|f| f.kind != FeedKind::Live),
    );

    let shared = Arc::new(Shared {
        args,
        shape: shape.clone(),
        files: feeds.iter().map(|_| OnceLock::new()).collect(),
        feeds,
        open,
        flow_config,
        detect,
        stop,
        progress,
        line_budget: LineBudget::new(LINE_BUDGET_BYTES),
        started_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        started: Instant::now(),
    });
    let guards = timely::execute(shape.timely_config(), move |worker| {
        run_worker(worker, &shared)
    })
    .map_err(|e| anyhow::anyhow!("cannot start the workers: {e}"))?;
    let results = guards.join();
    bar.finish();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("a worker failed: {e}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{}", failures.join("; "))
    }
}

/// Opens every named file and interface once before starting, so that a missing file, a
/// non-capture file, an unsupported link type, a bad filter or a missing permission
/// stops the run with one clear sentence.
fn preflight(feeds: &[FeedSpec], open: &OpenOptions) -> Result<()> {
    for feed in feeds.iter().filter(|f| f.kind != FeedKind::Stdin) {
        let source = feed.open(open)?;
        if let (Some(expr), FeedKind::File) = (&open.filter, &feed.kind) {
            if let Some(linktype) = first_linktype(source) {
                crate::capture::filter::validate(expr, linktype)?;
            }
        }
    }
    Ok(())
}

fn first_linktype(mut source: Box<dyn FrameSource>) -> Option<u32> {
    match source.next_frame() {
        Ok(crate::capture::Poll::Frame(f)) => Some(f.linktype),
        _ => None,
    }
}

fn install_signal_handler(stop: Arc<AtomicBool>) -> Result<()> {
    ctrlc::set_handler(move || {
        if stop.swap(true, Ordering::SeqCst) {
            eprintln!("flowtide: interrupted twice, exiting without flushing");
            std::process::exit(130);
        }
        eprintln!(
            "flowtide: stopping: closing inputs and flushing open flows (interrupt again to abort)"
        );
    })
    .context("cannot install the SIGINT/SIGTERM handler")
}

fn output_path(shared: &Shared, stem: &str) -> PathBuf {
    let name = if shared.shape.processes > 1 {
        format!("{stem}.p{}.jsonl", shared.shape.process)
    } else {
        format!("{stem}.jsonl")
    };
    shared.args.out.join(name)
}

/// One worker: builds the dataflows, reads its share of the feeds, drains, reports.
fn run_worker(worker: &mut Worker, shared: &Shared) -> Result<(), String> {
    let index = worker.index();
    let threads = shared.shape.threads;
    let local = index % threads;
    // The worker of this process that writes output file number `slot`: the files are
    // spread over the workers (flows.jsonl, the largest, on the first).
    let writer = |slot: usize| index - local + slot % threads;
    let args = &shared.args;
    let errors: SinkErrors = Rc::default();
    let writers = Writers {
        errors: Rc::clone(&errors),
        budget: shared.line_budget.clone(),
    };
    let alert_counts: Rc<RefCell<std::collections::BTreeMap<String, u64>>> = Rc::default();

    let probe = ProbeHandle::new();
    let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Packet>>>::new();
    // IP fragments travel on their own input, to the reassembler; everything else goes
    // straight to the flow table.
    let mut frag_input = InputHandle::<u64, CapacityContainerBuilder<Vec<Packet>>>::new();
    // One light count per fragment, for the unfinished-fragment flood rule (so that the
    // rule never copies a fragment's bytes).
    let mut frag_arrivals = InputHandle::<u64, CapacityContainerBuilder<Vec<FragCount>>>::new();
    let count_fragments = shared.detect.frag_unfinished_threshold > 0;
    // Each worker's latest capture time, sent once at the end and seen by every worker.
    let mut ends = InputHandle::<u64, CapacityContainerBuilder<Vec<u64>>>::new();
    let (flow_stats, frag_stats) = worker.dataflow::<u64, _, _>(|scope| {
        let packets = scope.input_from(&mut input);
        let fragments = scope.input_from(&mut frag_input);
        let end_of_input = scope.input_from(&mut ends).broadcast();
        let decoder = Decoder::default();
        let unfinished = count_fragments.then(|| scope.input_from(&mut frag_arrivals));
        let (reassembled, events, frag_stats) = fragments.reassemble_fragments(
            end_of_input.clone(),
            crate::defrag::reassembly_config(args.frag_policy, args.frag_timeout, args.frag_memory),
            move |ip, ctx, p| decoder.decode_ip(ip, ctx, p).is_ok(),
        );
        let mut alerts = events.clone().frag_alerts(&shared.detect);
        if let Some(arrivals) = unfinished {
            alerts = arrivals
                .unfinished_fragment_alerts(reassembled.clone(), &shared.detect)
                .concat(alerts);
        }
        events
            .write_ordered_jsonl(
                output_path(shared, "reassembly"),
                writer(2),
                |e: &ReassemblyEvent| (e.ts_ns, e.key),
                |e: &ReassemblyEvent| EventLine::from(e),
                &writers,
            )
            .probe_with(&probe);
        // The detector scores hopping windows of the same length every `detect.slide`:
        // the flow table cuts panes of the greatest common divisor of both slides, which
        // each windows operator merges into its own windows.
        let window = shared.flow_config.window;
        let detect_window = window.map(|w| shared.detect.scored_windows(w));
        let mut table_config = shared.flow_config;
        if let (Some(w), Some(d)) = (window, detect_window) {
            let pane = gcd(w.slide_ns, d.slide_ns);
            table_config.window = Some(WindowConfig {
                size_ns: pane,
                slide_ns: pane,
            });
        }
        let reflection = &shared.detect.reflection;
        if reflection.min_sources > 0 {
            // The reflection rule judges responses as they open their flows.
            table_config.announce_udp_min_bytes = reflection.min_bytes.max(1);
        }
        let (flows, panes, openings, stats) = packets
            .concat(reassembled)
            .flow_table_with_openings(end_of_input.clone(), table_config);
        let connections = &shared.detect.connections;
        if connections.beacon_min > 0
            || connections.brute_force_min > 0
            || shared.detect.scans.min_ports > 0
            || shared.detect.scans.min_hosts > 0
            || shared.detect.scans.burst_min_ports > 0
            || shared.detect.scans.burst_min_hosts > 0
            || shared.detect.syn_acks.min > 0
            || shared.detect.half_open.burst_min > 0
            || reflection.min_sources > 0
        {
            alerts = flows
                .clone()
                .connection_alerts_with_openings(openings, end_of_input.clone(), &shared.detect)
                .concat(alerts);
        }
        if let (Some(window), Some(detect_window)) = (window, detect_window) {
            // Tumbling windows of the scored length are exactly the scored windows that
            // tile time: one windows operator serves both.
            let tiling = window.slide_ns == window.size_ns
                && detect_window.size_ns == window.size_ns
                && window.size_ns.is_multiple_of(detect_window.slide_ns);
            let (windows, scored) = if detect_window == window {
                let windows = panes.windows(window, end_of_input);
                (windows.clone(), windows)
            } else if tiling {
                let scored = panes.windows_with(
                    WindowsState::new(detect_window).tiling_partials(),
                    end_of_input,
                );
                let size = window.size_ns;
                let windows = scored
                    .clone()
                    .filter(move |w: &WindowRecord| w.start_ns.is_multiple_of(size));
                (windows, scored)
            } else {
                let windows = panes.clone().windows(window, end_of_input.clone());
                (windows, panes.windows(detect_window, end_of_input))
            };
            alerts = scored
                .clone()
                .detect_anomalies(shared.detect.clone())
                .concat(scored.rule_alerts(&shared.detect))
                .concat(alerts);
            windows
                .write_ordered_jsonl(
                    output_path(shared, "windows"),
                    writer(1),
                    |w: &WindowRecord| w.order_key(),
                    |w: &WindowRecord| WindowLine::from(w),
                    &writers,
                )
                .probe_with(&probe);
        }
        let counts = Rc::clone(&alert_counts);
        alerts
            .inspect(move |a: &Alert| {
                *counts
                    .borrow_mut()
                    .entry(a.kind.name().to_string())
                    .or_insert(0) += 1;
            })
            .write_ordered_jsonl(
                output_path(shared, "alerts"),
                writer(3),
                |a: &Alert| a.order_key(),
                |a: &Alert| AlertLine::from(a),
                &writers,
            )
            .probe_with(&probe);
        if args.flows_csv {
            flows
                .clone()
                .write_ordered_lines(
                    output_path(shared, "flows").with_extension("csv"),
                    writer(1),
                    |f: &FlowRecord| f.order_key(),
                    |f: &FlowRecord| FlowLine::from(f).csv_row(),
                    Some(FlowLine::csv_header()),
                    &writers,
                )
                .probe_with(&probe);
        }
        flows
            .write_ordered_jsonl(
                output_path(shared, "flows"),
                writer(0),
                |f: &FlowRecord| f.order_key(),
                |f: &FlowRecord| FlowLine::from(f),
                &writers,
            )
            .probe_with(&probe);
        (stats, frag_stats)
    });

    let mut report_input = InputHandle::<u64, CapacityContainerBuilder<Vec<WorkerReport>>>::new();
    let report_probe = ProbeHandle::new();
    let reports: Rc<RefCell<Vec<WorkerReport>>> = Rc::default();
    worker.dataflow::<u64, _, _>(|scope| {
        let sink = Rc::clone(&reports);
        scope
            .input_from(&mut report_input)
            .exchange(|_| 0)
            .inspect(move |r: &WorkerReport| sink.borrow_mut().push(r.clone()))
            .probe_with(&report_probe);
    });

    let (mut ingest, open_failures) = open_feeds(shared, local);
    let mut in_flight = InFlight::new(
        backpressure::DEFAULT_LAG_NS
            .max(4 * args.tick)
            .max(args.max_disorder),
        backpressure::DEFAULT_MAX_PACKETS,
    );
    let mut batch: Vec<Packet> = Vec::with_capacity(BATCH);
    let mut frag_batch: Vec<Packet> = Vec::new();
    let mut arrivals: Vec<FragCount> = Vec::new();
    // Time spent waiting for the dataflow to catch up (back-pressure).
    let mut held_back = Duration::ZERO;
    loop {
        // The dataflow keeps the sent batch's allocation: size the next one at once
        // rather than growing it a packet at a time.
        batch.reserve(BATCH);
        let status = ingest.fill(&mut batch, &mut frag_batch, BATCH);
        in_flight.sent(batch.len() + frag_batch.len());
        if !batch.is_empty() {
            input.send_batch(&mut batch);
            batch.clear();
        }
        if !frag_batch.is_empty() {
            if count_fragments {
                arrivals.extend(frag_batch.iter().map(fragment_arrival));
                frag_arrivals.send_batch(&mut arrivals);
                arrivals.clear();
            }
            frag_input.send_batch(&mut frag_batch);
            frag_batch.clear();
        }
        match ingest.stamp_time(args.tick) {
            Some(t) if t > *input.time() => {
                in_flight.close_epoch(*input.time());
                input.advance_to(t);
                frag_input.advance_to(t);
                frag_arrivals.advance_to(t);
                ends.advance_to(t);
            }
            Some(_) => {}
            None => break,
        }
        worker.step();
        // Back-pressure (see `backpressure`): wait while the outputs are too far behind.
        let now = *input.time();
        let wait = |f: &mut InFlight| f.must_wait(now, |t| probe.less_than(&t));
        if wait(&mut in_flight) {
            let waiting = Instant::now();
            while wait(&mut in_flight) && !shared.stop.load(Ordering::Relaxed) {
                worker.step_or_park(None);
            }
            held_back += waiting.elapsed();
        }
        if let FillStatus::Wait(d) = status {
            worker.step_or_park(Some(d));
        }
    }
    tracing::debug!(
        worker = index,
        elapsed_s = shared.started.elapsed().as_secs_f64(),
        held_back_s = held_back.as_secs_f64(),
        "input exhausted"
    );
    if let Some(t) = ingest.max_event_time() {
        ends.send(t);
    }
    drop(input);
    drop(frag_input);
    drop(frag_arrivals);
    drop(ends);
    while !probe.done() {
        worker.step_or_park(None);
    }
    tracing::debug!(
        worker = index,
        elapsed_s = shared.started.elapsed().as_secs_f64(),
        "outputs written"
    );

    let stats = *flow_stats.borrow();
    let mut feeds = ingest.counters();
    feeds.extend(open_failures);
    report_input.send(WorkerReport {
        worker: index as u32,
        process: shared.shape.process as u32,
        feeds,
        flow_packets: stats.packets,
        flows: stats.flows,
        peak_open_flows: stats.peak_open_flows,
        reassembly: frag_stats.borrow().table.clone(),
        undecodable_datagrams: frag_stats.borrow().undecodable,
        wall_seconds: shared.started.elapsed().as_secs_f64(),
        alerts: alert_counts.take(),
    });
    drop(report_input);
    while !report_probe.done() {
        worker.step_or_park(None);
    }

    if index == 0 {
        let settings = RunSettings {
            workers: threads,
            processes: shared.shape.processes,
            tick_ms: args.tick as f64 / 1e6,
            max_disorder_ms: args.max_disorder as f64 / 1e6,
            idle_timeout_s: args.idle_timeout as f64 / 1e9,
            frag_policy: match args.frag_policy {
                _ if args.no_reassembly => "off".to_string(),
                Some(p) => p.name().to_string(),
                None => "default".to_string(),
            },
            frag_timeout_s: args.frag_timeout as f64 / 1e9,
            frag_memory_bytes: args.frag_memory,
            speed: args.speed,
            filter: args.filter.clone(),
        };
        let summary = Summary::build(
            reports.take(),
            settings,
            shared.started_ns,
            shared.started.elapsed().as_secs_f64(),
        );
        let path = args.out.join("summary.json");
        summary
            .write(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let errors = errors.take();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Opens the feeds this worker reads: every file (shared between the process's workers,
/// see [`SharedFile`]), and its round-robin share of standard input and live interfaces.
fn open_feeds(shared: &Shared, local: usize) -> (Ingest, Vec<FeedCounters>) {
    let threads = shared.shape.threads as u64;
    let mut opened = Vec::new();
    let mut failures = Vec::new();
    let mut unsharded = 0usize;
    for (i, spec) in shared.feeds.iter().enumerate() {
        let (mine, shard, primary) = if spec.shardable() {
            (
                true,
                (threads > 1).then_some((local as u64, threads)),
                local == 0,
            )
        } else {
            let mine = unsharded % shared.shape.threads == local;
            unsharded += 1;
            (mine, None, true)
        };
        if !mine {
            continue;
        }
        let source = match shard {
            Some(_) => shared.files[i]
                .get_or_init(|| {
                    CaptureFile::open(&spec.name).map(|f| SharedFile::new(f).map(Arc::new))
                })
                .clone(),
            None => Ok(None),
        };
        let source = match source {
            Ok(Some(file)) => Ok((FeedSource::Shared(file), None)),
            // Not shared: the whole feed, or (a file that cannot be mapped) this
            // worker's shard of it.
            Ok(None) => spec.open(&shared.open).map(|s| (FeedSource::Own(s), shard)),
            Err(e) => Err(e),
        };
        match source {
            Ok((source, shard)) => opened.push(AssignedFeed {
                spec: spec.clone(),
                source,
                shard,
                primary,
            }),
            Err(e) => {
                if primary {
                    eprintln!("flowtide: {e}");
                }
                let kind = match spec.kind {
                    FeedKind::File => "file",
                    FeedKind::Stdin => "stdin",
                    FeedKind::Live => "live",
                };
                let mut c = FeedCounters::new(&spec.name, kind, shared.shape.process as u32);
                c.error = Some(e.to_string());
                if primary {
                    failures.push(c);
                }
            }
        }
    }
    let config = IngestConfig {
        max_disorder_ns: shared.args.max_disorder,
        speed: shared.args.speed,
        filter: shared.args.filter.clone(),
        process: shared.shape.process as u32,
        reassemble: !shared.args.no_reassembly,
    };
    // Without reassembly, fragments are ordinary packets: their bytes are not kept.
    let decoder = Decoder::new(DecodeConfig {
        keep_fragment_bytes: !shared.args.no_reassembly,
        ..DecodeConfig::default()
    });
    let ingest = Ingest::new(
        opened,
        decoder,
        config,
        Arc::clone(&shared.stop),
        Arc::clone(&shared.progress),
    );
    (ingest, failures)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}
