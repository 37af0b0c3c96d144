//! The figures as Markdown tables, ready for `docs/benchmarks.md`.

use std::fmt::Write;

use crate::breakdown::{Layer, LayerRow};
use crate::links::{Allocator, Enrolment, LinkRow};
use crate::mqtt::PeerRow;

/// The targets of the issue: at 10,000 agents over TLS, controller RSS
/// under 300 MB and CPU under 5 % of one core.
const TARGET_AGENTS: usize = 10_000;
const TARGET_RSS_MB: f64 = 300.0;
const TARGET_CPU_PERCENT: f64 = 5.0;

/// Everything measured in one run.
#[derive(Debug, Default)]
pub struct Report {
    /// One line about the machine.
    pub machine: String,
    /// Enrolment timings, per fleet.
    pub fleets: Vec<Enrolment>,
    /// Link measurements.
    pub links: Vec<LinkRow>,
    /// Layer breakdown.
    pub layers: Vec<LayerRow>,
    /// The MQTT broker beside the controller.
    pub peer: Option<PeerRow>,
    /// Why something was not measured.
    pub notes: Vec<String>,
}

impl Report {
    /// The whole report.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "Machine: {}\n", self.machine);
        self.render_links(&mut o);
        self.render_fleets(&mut o);
        self.render_layers(&mut o);
        self.render_peer(&mut o);
        self.render_targets(&mut o);
        for n in &self.notes {
            let _ = writeln!(o, "Note: {n}");
        }
        o
    }

    fn render_links(&self, o: &mut String) {
        if self.links.is_empty() {
            return;
        }
        let _ = writeln!(
            o,
            "| agents | allocator | all online | RSS before | RSS held (heap) | per agent | peak RSS | CPU, steady \
             | threads | fds | heartbeats/s | statuses/s | agents' process RSS | agents' process CPU | rest of machine |"
        );
        let _ = writeln!(o, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &self.links {
            let (hb, st) = r.message_rates();
            let _ = writeln!(
                o,
                "| {} | {} | {:.1} s | {} | {} ({}) | {:.1} KiB | {} | {:.2} % | {} | {} | {:.0} | {:.0} | {} | {:.1} % | {:.1} % |",
                thousands(r.n),
                r.allocator.label(),
                r.connect.as_secs_f64(),
                mib(r.base.rss_kib),
                mib(r.held.rss_kib),
                mib(r.held.anon_kib),
                r.kib_per_agent(),
                mib(r.end.hwm_kib),
                r.cpu_percent(),
                r.held.threads,
                r.held.fds,
                hb,
                st,
                mib(r.agent_end.rss_kib),
                r.agent_cpu_percent(),
                r.other_cpu_percent(),
            );
        }
        if let Some(r) = self.links.first() {
            let _ = writeln!(
                o,
                "\nCPU window: {:.0} s of steady heartbeat (15 s interval), after the connect storm settled.\n",
                r.end.at.duration_since(r.held.at).as_secs_f64()
            );
        }
    }

    fn render_fleets(&self, o: &mut String) {
        if self.fleets.is_empty() {
            return;
        }
        let _ = writeln!(o, "| agents | create codes (8 parallel) | enrol (16 parallel) | then all online |");
        let _ = writeln!(o, "|---:|---:|---:|---:|");
        for f in &self.fleets {
            let _ = writeln!(
                o,
                "| {} | {:.1} s | {:.1} s | {:.1} s |",
                thousands(f.n),
                f.codes.as_secs_f64(),
                f.enrol.as_secs_f64(),
                f.connect.as_secs_f64()
            );
        }
        let _ = writeln!(o);
    }

    fn render_layers(&self, o: &mut String) {
        if self.layers.is_empty() {
            return;
        }
        let _ =
            writeln!(o, "| connections stop at | connections | opened in | RSS before | RSS held | per connection |");
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
        let full = self.links.iter().filter(|l| l.allocator == Allocator::Default).max_by_key(|l| l.n);
        let layers = self.layers.iter().map(|l| {
            let name = match l.layer {
                Layer::Tcp => "TCP accepted, nothing sent",
                Layer::Tls => "TLS handshake done, no request",
            };
            (name, l.n, l.open, l.base.rss_kib, l.held.rss_kib, l.kib_per_connection())
        });
        let link = full.map(|l| ("full agent link", l.n, l.connect, l.base.rss_kib, l.held.rss_kib, l.kib_per_agent()));
        for (name, n, open, base, held, per) in layers.chain(link) {
            let _ = writeln!(
                o,
                "| {name} | {} | {:.1} s | {} | {} | {per:.1} KiB |",
                thousands(n),
                open.as_secs_f64(),
                mib(base),
                mib(held),
            );
        }
        let _ = writeln!(o);
    }

    fn render_peer(&self, o: &mut String) {
        let Some(p) = &self.peer else { return };
        let _ = writeln!(
            o,
            "| peer | clients | all connected | RSS before | RSS held | per client | CPU, steady | messages/s | rest of machine |"
        );
        let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            o,
            "| {} | {} | {:.1} s | {} | {} | {:.1} KiB | {:.2} % | {:.0} | {:.1} % |",
            p.name,
            thousands(p.n),
            p.connect.as_secs_f64(),
            mib(p.base.rss_kib),
            mib(p.held.rss_kib),
            p.kib_per_client(),
            p.cpu_percent(),
            p.messages_per_sec,
            p.other_cpu_percent(),
        );
        if let Some(ours) = self.links.iter().filter(|l| l.allocator == Allocator::Default).find(|l| l.n == p.n) {
            let _ = writeln!(
                o,
                "\nDalaba / {}: {:.1}x memory per connection, {:.1}x CPU at steady state.\n",
                p.name,
                ours.kib_per_agent() / p.kib_per_client().max(1e-9),
                ours.cpu_percent() / p.cpu_percent().max(1e-9),
            );
        }
    }

    fn render_targets(&self, o: &mut String) {
        let Some(r) = self.links.iter().filter(|l| l.allocator == Allocator::Default).find(|l| l.n == TARGET_AGENTS)
        else {
            return;
        };
        let rss_mb = r.held.rss_kib as f64 * 1024.0 / 1e6;
        let cpu = r.cpu_percent();
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let _ = writeln!(
            o,
            "Target at {} agents: RSS {rss_mb:.0} MB < {TARGET_RSS_MB:.0} MB: {}; CPU {cpu:.2} % < {TARGET_CPU_PERCENT:.0} % of one core: {}.",
            thousands(TARGET_AGENTS),
            verdict(rss_mb < TARGET_RSS_MB),
            verdict(cpu < TARGET_CPU_PERCENT),
        );
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        for (n, s) in [(0, "0"), (999, "999"), (1000, "1,000"), (10000, "10,000"), (1234567, "1,234,567")] {
            assert_eq!(thousands(n), s);
        }
    }
}
