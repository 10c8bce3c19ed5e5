//! Ready-made messages: monitor state changes ([`probe_message`], in the manner of Uptime Kuma)
//! and alerts ([`alerts_message`], in the manner of Grafana and Alertmanager). Pure.
//!
//! The inputs are plain structs with std types only, so the probe and alerter crates can fill
//! them without depending on anything here but this crate.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::payload::{Attachment, Field, Payload, Priority};
use crate::time::{format_duration, format_utc};

/// Side-bar colour of DOWN monitors and firing alerts.
pub const COLOR_PROBLEM: &str = "#D63232";
/// Side-bar colour of UP monitors and resolved alerts.
pub const COLOR_OK: &str = "#2EB67D";
/// Side-bar colour of PENDING monitors.
pub const COLOR_PENDING: &str = "#F2A900";
/// Side-bar colour of monitors in maintenance.
pub const COLOR_MAINTENANCE: &str = "#1F78C1";

/// Longest label or annotation value put in a short (half-width) field.
const SHORT_FIELD_CHARS: usize = 40;

/// Who posts and where, shared by all generated messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageStyle {
    /// Poster name override (e.g. "Uptime" or "Alerts").
    pub username: Option<String>,
    /// Poster avatar override.
    pub icon_url: Option<String>,
    /// Channel override.
    pub channel: Option<String>,
    /// Footer of every card (e.g. the sending host or product name).
    pub footer: Option<String>,
    /// Icon next to the footer.
    pub footer_icon: Option<String>,
    /// Priority given to problem messages (DOWN monitors, firing alerts); recoveries never get
    /// one.
    pub problem_priority: Option<Priority>,
    /// Text put before the headline of problem messages, e.g. `@channel` or `@oncall`.
    pub problem_mention: Option<String>,
}

/// The state of a monitor, as Uptime Kuma names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MonitorStatus {
    /// The check fails.
    Down,
    /// The check passes.
    Up,
    /// The check failed but retries are not used up yet.
    Pending,
    /// Checks are suspended for maintenance.
    Maintenance,
}

impl MonitorStatus {
    /// `UP`, `DOWN`, `PENDING`, `MAINTENANCE`.
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorStatus::Down => "DOWN",
            MonitorStatus::Up => "UP",
            MonitorStatus::Pending => "PENDING",
            MonitorStatus::Maintenance => "MAINTENANCE",
        }
    }

    fn emoji(self) -> &'static str {
        match self {
            MonitorStatus::Down => "🔴",
            MonitorStatus::Up => "✅",
            MonitorStatus::Pending => "🟡",
            MonitorStatus::Maintenance => "🔧",
        }
    }

    fn color(self) -> &'static str {
        match self {
            MonitorStatus::Down => COLOR_PROBLEM,
            MonitorStatus::Up => COLOR_OK,
            MonitorStatus::Pending => COLOR_PENDING,
            MonitorStatus::Maintenance => COLOR_MAINTENANCE,
        }
    }
}

impl std::fmt::Display for MonitorStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A monitor changed state.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeEvent {
    /// The monitor's display name.
    pub monitor: String,
    /// What it checks (URL, `host:port`, DNS name), linked from the title when it is a URL.
    pub target: Option<String>,
    /// The new state.
    pub status: MonitorStatus,
    /// The state before, if known.
    pub previous: Option<MonitorStatus>,
    /// The check's message, e.g. `200 - OK` or `connect: connection refused`.
    pub message: String,
    /// When the check ran.
    pub time: SystemTime,
    /// How long the check took, if it got an answer.
    pub response_time: Option<Duration>,
}

/// Builds the message for a monitor state change: one card coloured by the new state, titled
/// `<emoji> <monitor> is <STATE>`, with the check's message and fields for state, time,
/// response time and target.
pub fn probe_message(event: &ProbeEvent, style: &MessageStyle) -> Payload {
    let status = event.status;
    let headline = match status {
        MonitorStatus::Maintenance => {
            format!("{} {} is under MAINTENANCE", status.emoji(), event.monitor)
        }
        _ => format!("{} {} is {}", status.emoji(), event.monitor, status),
    };
    let mut fields = Vec::new();
    let state = match event.previous {
        Some(prev) if prev != status => format!("{status} (was {prev})"),
        _ => status.to_string(),
    };
    fields.push(Field::new("Status", state, true));
    fields.push(Field::new("Time", format_utc(event.time), true));
    if let Some(rt) = event.response_time {
        fields.push(Field::new("Response time", format_duration(rt), true));
    }
    if let Some(target) = &event.target {
        fields.push(Field::new("Target", target.clone(), false));
    }
    let fallback = if event.message.is_empty() {
        format!("[{status}] {}", event.monitor)
    } else {
        format!("[{status}] {}: {}", event.monitor, event.message)
    };
    let attachment = Attachment {
        fallback: Some(fallback),
        color: Some(status.color().to_string()),
        title: Some(headline),
        title_link: event.target.as_ref().filter(|t| is_link(t)).cloned(),
        text: Some(event.message.clone()).filter(|m| !m.is_empty()),
        fields,
        footer: style.footer.clone(),
        footer_icon: style.footer_icon.clone(),
        ..Attachment::default()
    };
    let problem = status == MonitorStatus::Down;
    finish(style, problem, None, vec![attachment])
}

/// Whether an alert fires or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertStatus {
    /// The alert condition holds.
    Firing,
    /// The alert condition no longer holds.
    Resolved,
}

impl AlertStatus {
    /// `FIRING` or `RESOLVED`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "FIRING",
            AlertStatus::Resolved => "RESOLVED",
        }
    }
}

impl std::fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert, shaped like Alertmanager's webhook alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Identifying labels; `alertname` names the alert.
    pub labels: BTreeMap<String, String>,
    /// Annotations; `summary` and `description` become the card's text, the rest fields.
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at: SystemTime,
    /// When it resolved (resolved alerts).
    pub ends_at: Option<SystemTime>,
    /// Link to the rule or graph that produced it.
    pub generator_url: Option<String>,
}

impl Alert {
    /// The `alertname` label, or `(unnamed alert)`.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map_or("(unnamed alert)", String::as_str)
    }
}

/// Builds one message for a group of alerts: a headline such as `[FIRING:2, RESOLVED:1]
/// HighLatency`, then one card per alert (red when firing, green when resolved) with summary
/// and description as text, labels and other annotations as fields, start and end times. Gives
/// `None` for an empty slice.
///
/// Mattermost shows long messages collapsed, so a big group stays readable; text beyond the
/// post limit is truncated by [`Payload::split`].
pub fn alerts_message(alerts: &[Alert], style: &MessageStyle) -> Option<Payload> {
    if alerts.is_empty() {
        return None;
    }
    let firing = alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count();
    let resolved = alerts.len() - firing;
    let mut counts = Vec::new();
    if firing > 0 {
        counts.push(format!("FIRING:{firing}"));
    }
    if resolved > 0 {
        counts.push(format!("RESOLVED:{resolved}"));
    }
    let first = alerts[0].name();
    let subject = if alerts.iter().all(|a| a.name() == first) {
        first.to_string()
    } else {
        format!("{} alerts", alerts.len())
    };
    let headline = format!("**[{}]** {subject}", counts.join(", "));
    let attachments = alerts.iter().map(|a| alert_attachment(a, style)).collect();
    Some(finish(style, firing > 0, Some(headline), attachments))
}

/// [`alerts_message`] for a single alert.
pub fn alert_message(alert: &Alert, style: &MessageStyle) -> Payload {
    let mut p = alerts_message(std::slice::from_ref(alert), style);
    // A one-element slice always gives a message.
    p.take().unwrap_or_default()
}

fn alert_attachment(alert: &Alert, style: &MessageStyle) -> Attachment {
    let summary = alert.annotations.get("summary").filter(|s| !s.is_empty());
    let description = alert
        .annotations
        .get("description")
        .filter(|s| !s.is_empty());
    let text = match (summary, description) {
        (Some(s), Some(d)) => Some(format!("**{s}**\n{d}")),
        (Some(s), None) => Some(format!("**{s}**")),
        (None, Some(d)) => Some(d.clone()),
        (None, None) => None,
    };
    let mut fields: Vec<Field> = alert
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| Field::new(k.clone(), v.clone(), v.chars().count() <= SHORT_FIELD_CHARS))
        .collect();
    fields.extend(
        alert
            .annotations
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "summary" | "description"))
            .map(|(k, v)| Field::new(k.clone(), v.clone(), v.chars().count() <= SHORT_FIELD_CHARS)),
    );
    fields.push(Field::new("Started", format_utc(alert.starts_at), true));
    if alert.status == AlertStatus::Resolved {
        if let Some(end) = alert.ends_at {
            fields.push(Field::new("Ended", format_utc(end), true));
            if let Ok(lasted) = end.duration_since(alert.starts_at) {
                fields.push(Field::new("Duration", format_duration(lasted), true));
            }
        }
    }
    let (color, mark) = match alert.status {
        AlertStatus::Firing => (COLOR_PROBLEM, "🔥"),
        AlertStatus::Resolved => (COLOR_OK, "✅"),
    };
    let fallback = match summary {
        Some(s) => format!("[{}] {}: {s}", alert.status, alert.name()),
        None => format!("[{}] {}", alert.status, alert.name()),
    };
    Attachment {
        fallback: Some(fallback),
        color: Some(color.to_string()),
        title: Some(format!("{mark} [{}] {}", alert.status, alert.name())),
        title_link: alert.generator_url.clone().filter(|u| is_link(u)),
        text,
        fields,
        footer: style.footer.clone(),
        footer_icon: style.footer_icon.clone(),
        ..Attachment::default()
    }
}

/// Puts the style's identity, the mention and priority of problem messages around the cards.
fn finish(
    style: &MessageStyle,
    problem: bool,
    headline: Option<String>,
    attachments: Vec<Attachment>,
) -> Payload {
    let mention = style
        .problem_mention
        .as_ref()
        .filter(|_| problem)
        .filter(|m| !m.is_empty());
    let text = match (mention, headline) {
        (Some(m), Some(h)) => Some(format!("{m} {h}")),
        (Some(m), None) => Some(m.clone()),
        (None, h) => h,
    };
    Payload {
        text,
        username: style.username.clone(),
        icon_url: style.icon_url.clone(),
        channel: style.channel.clone(),
        attachments,
        priority: style.problem_priority.filter(|_| problem),
        ..Payload::default()
    }
}

fn is_link(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn event(status: MonitorStatus) -> ProbeEvent {
        ProbeEvent {
            monitor: "API".into(),
            target: Some("https://api.example.com/health".into()),
            status,
            previous: Some(MonitorStatus::Up),
            message: "connection refused".into(),
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            response_time: None,
        }
    }

    #[test]
    fn down_message_is_red_with_priority_and_mention() {
        let style = MessageStyle {
            problem_priority: Some(Priority::urgent()),
            problem_mention: Some("@channel".into()),
            ..MessageStyle::default()
        };
        let p = probe_message(&event(MonitorStatus::Down), &style);
        p.validate().unwrap();
        assert_eq!(p.text.as_deref(), Some("@channel"));
        assert_eq!(p.priority, Some(Priority::urgent()));
        let a = &p.attachments[0];
        assert_eq!(a.color.as_deref(), Some(COLOR_PROBLEM));
        assert_eq!(a.title.as_deref(), Some("🔴 API is DOWN"));
        assert_eq!(a.fields[0], Field::new("Status", "DOWN (was UP)", true));
        assert_eq!(
            a.fields[1],
            Field::new("Time", "2023-11-14 22:13:20 UTC", true)
        );

        let up = probe_message(
            &ProbeEvent {
                previous: Some(MonitorStatus::Down),
                ..event(MonitorStatus::Up)
            },
            &style,
        );
        assert_eq!(up.priority, None);
        assert_eq!(up.text, None);
        assert_eq!(up.attachments[0].color.as_deref(), Some(COLOR_OK));
    }

    #[test]
    fn non_url_targets_are_not_links() {
        let e = ProbeEvent {
            target: Some("db.internal:5432".into()),
            ..event(MonitorStatus::Down)
        };
        let p = probe_message(&e, &MessageStyle::default());
        assert_eq!(p.attachments[0].title_link, None);
        assert_eq!(
            p.attachments[0].fields.last().unwrap().value,
            "db.internal:5432"
        );
    }

    #[test]
    fn alert_group_headline_counts_states() {
        let mut a = Alert {
            status: AlertStatus::Firing,
            labels: [("alertname".to_string(), "HighCPU".to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: UNIX_EPOCH,
            ends_at: None,
            generator_url: None,
        };
        let mut b = a.clone();
        b.status = AlertStatus::Resolved;
        let p = alerts_message(&[a.clone(), b.clone()], &MessageStyle::default()).unwrap();
        assert_eq!(
            p.text.as_deref(),
            Some("**[FIRING:1, RESOLVED:1]** HighCPU")
        );
        b.labels.insert("alertname".into(), "DiskFull".into());
        let p = alerts_message(&[a.clone(), b], &MessageStyle::default()).unwrap();
        assert_eq!(
            p.text.as_deref(),
            Some("**[FIRING:1, RESOLVED:1]** 2 alerts")
        );
        assert!(alerts_message(&[], &MessageStyle::default()).is_none());
        a.labels.clear();
        assert_eq!(
            alert_message(&a, &MessageStyle::default()).attachments[0]
                .title
                .as_deref(),
            Some("🔥 [FIRING] (unnamed alert)")
        );
    }
}
