//! Building timely's configuration from flowtide's own flags.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use timely::{CommunicationConfig, Config, WorkerConfig};

/// Where this process sits in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterShape {
    /// Worker threads per process.
    pub threads: usize,
    /// Number of processes.
    pub processes: usize,
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process.
    pub addresses: Vec<String>,
}

impl ClusterShape {
    /// Validates the flags and reads the hostfile (default: 127.0.0.1:2101 + i).
    pub fn new(
        threads: usize,
        processes: usize,
        process: usize,
        hostfile: Option<&Path>,
    ) -> Result<Self> {
        if process >= processes {
            bail!("--process {process} is out of range for --processes {processes} (indices start at 0)");
        }
        let addresses = match hostfile {
            Some(path) => read_hostfile(path, processes)?,
            None => (0..processes)
                .map(|i| format!("127.0.0.1:{}", 2101 + i))
                .collect(),
        };
        Ok(ClusterShape {
            threads,
            processes,
            process,
            addresses,
        })
    }

    /// Total number of workers in the cluster.
    pub fn peers(&self) -> usize {
        self.threads * self.processes
    }

    /// The timely configuration.
    pub fn timely_config(&self) -> Config {
        let communication = if self.processes > 1 {
            CommunicationConfig::Cluster {
                threads: self.threads,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            }
        } else if self.threads > 1 {
            CommunicationConfig::Process(self.threads)
        } else {
            CommunicationConfig::Thread
        };
        let mut worker = WorkerConfig::default();
        flowtide_dataflows::operators::baseline::configure_worker(&mut worker);
        Config {
            communication,
            worker,
        }
    }
}

/// Reads a hostfile: one `host:port` per line; blank lines and `#` comments ignored.
pub fn read_hostfile(path: &Path, processes: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read hostfile {}", path.display()))?;
    let hosts: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    for h in &hosts {
        let ok = h
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            bail!(
                "hostfile {} has {h:?}, which is not host:port",
                path.display()
            );
        }
    }
    if hosts.len() < processes {
        bail!(
            "hostfile {} lists {} addresses but --processes is {processes}",
            path.display(),
            hosts.len()
        );
    }
    Ok(hosts.into_iter().take(processes).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_addresses_and_validation() {
        let s = ClusterShape::new(2, 3, 1, None).expect("valid");
        assert_eq!(
            s.addresses,
            vec!["127.0.0.1:2101", "127.0.0.1:2102", "127.0.0.1:2103"]
        );
        assert_eq!(s.peers(), 6);
        assert!(ClusterShape::new(1, 2, 2, None).is_err());
    }

    #[test]
    fn hostfile_parsing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("hosts");
        std::fs::write(&p, "# cluster\n10.0.0.1:2101\n\n10.0.0.2:2101 # second\n").expect("write");
        assert_eq!(
            read_hostfile(&p, 2).expect("ok"),
            vec!["10.0.0.1:2101", "10.0.0.2:2101"]
        );
        assert!(read_hostfile(&p, 3).is_err());
        std::fs::write(&p, "nohost\n").expect("write");
        assert!(read_hostfile(&p, 1).is_err());
    }
}
