//! Where a paced run's tail comes from: a second-by-second record of what the machine did
//! (the longest a 1 ms sleep overslept, jHiccup-style, and the CPU time the hypervisor took
//! away, `steal` in /proc/stat) and what hookrelay and the broker used, set beside the
//! deliveries that were slow in that second. A stall that every thread in the VM saw is not
//! hookrelay's; a slow second with a quiet machine is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::latency::cpu_and_peak;

/// One second of the run, by the harness clock.
#[derive(Clone, Copy, Default)]
pub(super) struct Second {
    /// False for the seconds before this run's meter started (the clock is the process's).
    measured: bool,
    /// The longest a 1 ms sleep overslept, microseconds.
    stall_us: u32,
    /// CPU time stolen from this VM, milliseconds summed over its CPUs.
    steal_ms: u32,
    /// CPU milliseconds hookrelay and the broker used.
    hookrelay_ms: u32,
    broker_ms: u32,
}

/// Samples the machine on a thread of its own (1,000 short sleeps a second) until `finish`,
/// which returns the seconds.
pub(super) struct Meter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Second>>,
}

impl Meter {
    /// `clock` is the harness clock in microseconds; seconds are indexed by it.
    pub(super) fn start(clock: fn() -> u64, hookrelay: u32, broker: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let cpu_ms = |pid: Option<u32>| pid.map_or(0, |p| (cpu_and_peak(p).0 * 1000.0) as u64);
            let mut seconds = Vec::new();
            let mut current = Second::default();
            let mut second = clock() / 1_000_000;
            let (mut steal, mut own, mut theirs) =
                (steal_ms(), cpu_ms(Some(hookrelay)), cpu_ms(broker));
            while !stopping.load(Ordering::Relaxed) {
                let before = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                let over = before.elapsed().saturating_sub(Duration::from_millis(1));
                current.stall_us = current
                    .stall_us
                    .max(over.as_micros().min(u128::from(u32::MAX)) as u32);
                let now = clock() / 1_000_000;
                if now != second {
                    let (s, o, t) = (steal_ms(), cpu_ms(Some(hookrelay)), cpu_ms(broker));
                    current.steal_ms = s.saturating_sub(steal) as u32;
                    current.hookrelay_ms = o.saturating_sub(own) as u32;
                    current.broker_ms = t.saturating_sub(theirs) as u32;
                    (steal, own, theirs) = (s, o, t);
                    seconds.resize(second as usize, Second::default());
                    current.measured = true;
                    seconds.push(std::mem::take(&mut current));
                    second = now;
                }
            }
            seconds
        });
        Self { stop, thread }
    }

    pub(super) fn finish(self) -> Vec<Second> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// Steal time of all CPUs so far, milliseconds (`/proc/stat` counts 1/100 s ticks).
fn steal_ms() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            line.split_whitespace().nth(8)?.parse::<u64>().ok()
        })
        .map_or(0, |ticks| ticks * 10)
}

/// Prints where the deliveries slower than `slow_ms` were produced, second by second, beside
/// what the machine did then. `samples` are (produce second, latency µs) pairs;
/// `wall_at_zero` is the wall-clock time of harness second 0, to line the worst seconds up
/// with the broker's GC log.
pub(super) fn report(
    samples: &[(u32, u32)],
    machine: &[Second],
    slow_ms: u32,
    wall_at_zero: SystemTime,
) {
    let slow_us = slow_ms * 1000;
    let mut by_second: Vec<(u32, u32, u32)> = Vec::new(); // (all, slow, max µs)
    for &(second, latency) in samples {
        let i = second as usize;
        if by_second.len() <= i {
            by_second.resize(i + 1, (0, 0, 0));
        }
        let s = &mut by_second[i];
        s.0 += 1;
        s.1 += u32::from(latency > slow_us);
        s.2 = s.2.max(latency);
    }
    let slow: u32 = by_second.iter().map(|s| s.1).sum();
    // A slow delivery produced in second s may have waited through s + 1 as well.
    let stall_near = |i: usize| {
        machine
            .get(i)
            .map_or(0, |m| m.stall_us)
            .max(machine.get(i + 1).map_or(0, |m| m.stall_us))
    };
    let during_stalls: u32 = by_second
        .iter()
        .enumerate()
        .filter(|(i, _)| stall_near(*i) >= slow_us / 2)
        .map(|(_, s)| s.1)
        .sum();
    let stalls = machine.iter().filter(|m| m.stall_us >= slow_us / 2).count();
    let measured = machine.iter().filter(|m| m.measured).count();
    let steal: u64 = machine.iter().map(|m| u64::from(m.steal_ms)).sum();
    println!(
        "  tail: {slow} deliveries over {slow_ms} ms ({:.3}%); {during_stalls} of them produced in a second \
         (or the one before) when a 1 ms sleep in the harness overslept by {} ms or more, which happened \
         in {stalls} of {} seconds; steal {steal} ms in all",
        100.0 * f64::from(slow) / samples.len().max(1) as f64,
        slow_ms / 2,
        measured,
    );
    let mut worst: Vec<usize> = (0..by_second.len())
        .filter(|&i| by_second[i].1 > 0)
        .collect();
    worst.sort_by_key(|&i| std::cmp::Reverse(by_second[i].1));
    worst.truncate(8);
    worst.sort_unstable();
    if worst.is_empty() {
        return;
    }
    println!(
        "  | second (UTC) | deliveries | over {slow_ms} ms | max ms | harness oversleep ms (this, next) | steal ms | CPU ms hookrelay / broker (this, next) |"
    );
    for i in worst {
        let (all, over, max) = by_second[i];
        let m = |j: usize| machine.get(j).copied().unwrap_or_default();
        let (this, next) = (m(i), m(i + 1));
        let wall = wall_at_zero + Duration::from_secs(i as u64);
        let t = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
        println!(
            "  | +{i} s ({:02}:{:02}:{:02}) | {all} | {over} | {:.1} | {:.1}, {:.1} | {} | {} / {}, {} / {} |",
            t / 3600,
            t / 60 % 60,
            t % 60,
            f64::from(max) / 1000.0,
            f64::from(this.stall_us) / 1000.0,
            f64::from(next.stall_us) / 1000.0,
            this.steal_ms + next.steal_ms,
            this.hookrelay_ms,
            this.broker_ms,
            next.hookrelay_ms,
            next.broker_ms,
        );
    }
}
