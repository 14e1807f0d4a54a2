//! `flowtide synth` (stub until the generator lands).
/// Runs the CLI.
pub fn run_cli(_args: &crate::cli::SynthArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
