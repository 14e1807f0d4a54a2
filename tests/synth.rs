//! Integration tests of `flowtide synth`.

use flowtide::synth::{generate, SynthOptions};

/// Writes a capture to `$SYNTH_OUT` (`SYNTH_PACKETS` packets, `SYNTH_SEED`); a tool
/// for manual inspection, run with `--ignored`.
#[test]
#[ignore]
fn dump() {
    let path = std::env::var("SYNTH_OUT").unwrap_or_else(|_| "/tmp/synth.pcap".into());
    let packets = std::env::var("SYNTH_PACKETS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let seed = std::env::var("SYNTH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let opts = SynthOptions {
        packets,
        seed,
        ..SynthOptions::default()
    };
    let file = std::fs::File::create(&path).expect("create output");
    let t = std::time::Instant::now();
    let report = generate(&opts, file).expect("generate");
    eprintln!("{:?} in {:?}", report, t.elapsed());
}
