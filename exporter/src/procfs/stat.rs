//! `/proc/stat`: CPU times, interrupts, context switches, boot time, forks,
//! process counts and softirqs.

use super::u64_field;
use crate::error::ParseError;

/// Ticks (USER_HZ) spent by one CPU, or by all, in each mode.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTicks {
    /// user
    pub user: u64,
    /// nice
    pub nice: u64,
    /// system
    pub system: u64,
    /// idle
    pub idle: u64,
    /// iowait
    pub iowait: u64,
    /// irq
    pub irq: u64,
    /// softirq
    pub softirq: u64,
    /// steal
    pub steal: u64,
    /// guest
    pub guest: u64,
    /// guest_nice
    pub guest_nice: u64,
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stat {
    /// The aggregate `cpu` line.
    pub total: Option<CpuTicks>,
    /// `cpuN` lines: (N, ticks), in file order.
    pub cpus: Vec<(u32, CpuTicks)>,
    /// First number of the `intr` line.
    pub intr: Option<u64>,
    /// `ctxt`.
    pub ctxt: Option<u64>,
    /// `btime`.
    pub btime: Option<u64>,
    /// `processes` (forks since boot).
    pub processes: Option<u64>,
    /// `procs_running`.
    pub procs_running: Option<u64>,
    /// `procs_blocked`.
    pub procs_blocked: Option<u64>,
    /// `softirq`: total, then per vector in kernel order.
    pub softirq: Option<(u64, Vec<u64>)>,
}

/// Softirq vector names, in the kernel's order on the `softirq` line.
pub const SOFTIRQ_VECTORS: [&str; 10] =
    ["hi", "timer", "net_tx", "net_rx", "block", "block_iopoll", "tasklet", "sched", "hrtimer", "rcu"];

/// Parses `/proc/stat`.
pub fn parse(text: &str) -> Result<Stat, ParseError> {
    let mut st = Stat::default();
    for (i, line) in text.lines().enumerate() {
        let ln = i + 1;
        let mut it = line.split_whitespace();
        let Some(key) = it.next() else { continue };
        let rest: Vec<&str> = it.collect();
        let first = |what: &str| -> Result<u64, ParseError> {
            let tok = rest.first().ok_or_else(|| ParseError::new(ln, format!("{what}: missing value")))?;
            u64_field(tok, ln, what)
        };
        match key {
            "intr" => st.intr = Some(first("intr")?),
            "ctxt" => st.ctxt = Some(first("ctxt")?),
            "btime" => st.btime = Some(first("btime")?),
            "processes" => st.processes = Some(first("processes")?),
            "procs_running" => st.procs_running = Some(first("procs_running")?),
            "procs_blocked" => st.procs_blocked = Some(first("procs_blocked")?),
            "softirq" => {
                let total = first("softirq")?;
                let mut v = Vec::with_capacity(rest.len().saturating_sub(1));
                for tok in rest.iter().skip(1) {
                    v.push(u64_field(tok, ln, "softirq")?);
                }
                st.softirq = Some((total, v));
            }
            _ if key.starts_with("cpu") => {
                let ticks = parse_cpu(&rest, ln)?;
                if key == "cpu" {
                    st.total = Some(ticks);
                } else {
                    let n = key[3..]
                        .parse::<u32>()
                        .map_err(|_| ParseError::new(ln, format!("bad cpu line key {key:?}")))?;
                    st.cpus.push((n, ticks));
                }
            }
            _ => {}
        }
    }
    Ok(st)
}

fn parse_cpu(f: &[&str], ln: usize) -> Result<CpuTicks, ParseError> {
    if f.len() < 4 {
        return Err(ParseError::new(ln, format!("cpu line has {} fields, want at least 4", f.len())));
    }
    let mut v = [0u64; 10];
    for (slot, tok) in v.iter_mut().zip(f.iter()) {
        *slot = u64_field(tok, ln, "cpu ticks")?;
    }
    Ok(CpuTicks {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: v[8],
        guest_nice: v[9],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "cpu  301854 612 111922 8979004 3552 2 3944 0 44 36\n\
cpu0 44490 19 21045 1087069 220 1 3410 0 2 1\n\
intr 8885917 17 0 0\n\
ctxt 38014093\n\
btime 1418183276\n\
processes 26442\n\
procs_running 2\n\
procs_blocked 0\n\
softirq 5057579 250191 1481983 1647 211099 186066 0 1783454 622196 12499 508444\n";

    #[test]
    fn parses_sample() {
        let s = parse(SAMPLE).unwrap();
        assert_eq!(s.total.unwrap().user, 301854);
        assert_eq!(s.cpus.len(), 1);
        assert_eq!(s.cpus[0].0, 0);
        assert_eq!(s.cpus[0].1.softirq, 3410);
        assert_eq!(s.cpus[0].1.guest_nice, 1);
        assert_eq!(s.intr, Some(8885917));
        assert_eq!(s.ctxt, Some(38014093));
        assert_eq!(s.btime, Some(1418183276));
        assert_eq!(s.processes, Some(26442));
        assert_eq!(s.procs_running, Some(2));
        assert_eq!(s.procs_blocked, Some(0));
        let (total, v) = s.softirq.unwrap();
        assert_eq!(total, 5057579);
        assert_eq!(v[0], 250191);
        assert_eq!(v.len(), 10);
    }

    #[test]
    fn old_kernels_with_fewer_columns() {
        let s = parse("cpu0 1 2 3 4\n").unwrap();
        assert_eq!(s.cpus[0].1.idle, 4);
        assert_eq!(s.cpus[0].1.steal, 0);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = parse("cpu 1 2 3 4\nctxt x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("cpuX 1 2 3 4\n").is_err());
        assert!(parse("cpu0 1 2\n").is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn garbage_never_panics(s in crate::procfs::garbage::kernelish()) {
            let _ = parse(&s);
        }
    }
}
