//! Prometheus metrics, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label for [`Metrics::messages`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// Message type (`hello`, `heartbeat`, `status`).
    pub r#type: String,
}

/// Label for [`Metrics::errors`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Error kind, e.g. `auth`, `malformed`, `oversized`, `timeout`.
    pub kind: String,
}

/// Labels for [`Metrics::alarms`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlarmLabels {
    /// The alarm's kind (`offline`, `disk`, …).
    pub kind: String,
    /// `open` (raised) or `cleared`.
    pub state: String,
}

/// Label for [`Metrics::alarm_webhook`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `delivered`, `failed_attempt`, `given_up` or `dropped`.
    pub outcome: String,
}

/// Every metric the controller exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Agents online now.
    pub agents_online: Gauge,
    /// Agent links accepted (welcomed).
    pub connects: Counter,
    /// Agent links ended.
    pub disconnects: Counter,
    /// Control messages received from agents, by type.
    pub messages: Family<MessageLabels, Counter>,
    /// Link errors, by kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Live sessions started.
    pub live_sessions: Counter,
    /// Live frames queued on agent links.
    pub live_frames_sent: Counter,
    /// Live frames dropped from slow agent links' queues.
    pub live_frames_dropped: Counter,
    /// Alarms raised and cleared, by kind.
    pub alarms: Family<AlarmLabels, Counter>,
    /// Alarm webhook posts by outcome.
    pub alarm_webhooks: Family<WebhookLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dalaba");
        let agents_online = Gauge::default();
        let connects = Counter::default();
        let disconnects = Counter::default();
        let messages = Family::<MessageLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register("agents_online", "Agents with a live link", agents_online.clone());
        registry.register("agent_connects", "Agent links accepted", connects.clone());
        registry.register("agent_disconnects", "Agent links ended", disconnects.clone());
        registry.register("agent_messages", "Control messages received from agents", messages.clone());
        registry.register("agent_link_errors", "Agent link errors by kind", errors.clone());
        let (live_sessions, live_frames_sent, live_frames_dropped) =
            (Counter::default(), Counter::default(), Counter::default());
        registry.register("live_sessions", "Live sessions started", live_sessions.clone());
        registry.register("live_frames_sent", "Live frames queued on agent links", live_frames_sent.clone());
        registry.register(
            "live_frames_dropped",
            "Live frames dropped from slow agent links (oldest first)",
            live_frames_dropped.clone(),
        );
        let alarms = Family::<AlarmLabels, Counter>::default();
        let alarm_webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register("alarms", "Operator alarms raised (state open) and cleared, by kind", alarms.clone());
        registry.register(
            "alarm_webhook",
            "Alarm webhook posts: delivered, failed attempts, given up, dropped (queue full)",
            alarm_webhooks.clone(),
        );
        Metrics {
            registry,
            agents_online,
            connects,
            disconnects,
            messages,
            errors,
            live_sessions,
            live_frames_sent,
            live_frames_dropped,
            alarms,
            alarm_webhooks,
        }
    }

    /// Counts an alarm raised (`open`) or `cleared`.
    pub fn alarm(&self, kind: &str, state: &str) {
        self.alarms.get_or_create(&AlarmLabels { kind: kind.to_string(), state: state.to_string() }).inc();
    }

    /// Counts a webhook outcome.
    pub fn alarm_webhook(&self, outcome: &str) {
        self.alarm_webhooks.get_or_create(&WebhookLabels { outcome: outcome.to_string() }).inc();
    }

    /// Counts a received message.
    pub fn message(&self, kind: &str) {
        self.messages.get_or_create(&MessageLabels { r#type: kind.to_string() }).inc();
    }

    /// Counts a link error.
    pub fn error(&self, kind: &str) {
        self.errors.get_or_create(&ErrorLabels { kind: kind.to_string() }).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.connects.inc();
        m.agents_online.set(3);
        m.error("auth");
        let text = m.render();
        assert!(text.contains("dalaba_agents_online 3"), "{text}");
        assert!(text.contains("dalaba_agent_connects_total 1"), "{text}");
        assert!(text.contains("dalaba_agent_link_errors_total{kind=\"auth\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
