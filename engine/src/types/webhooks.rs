//! Webhooks: where the spec's events are delivered, signed, and each delivery's log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

/// The events a webhook can subscribe to (the spec's seven).
pub const WEBHOOK_EVENTS: &[&str] = &[
    "experiment.started",
    "experiment.completed",
    "experiment.paused",
    "new_best_found",
    "budget.exhausted",
    "human_needed",
    "run.failed",
];

/// A webhook as shown: its secret and header values never are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Webhook {
    pub id: Uuid,
    pub name: String,
    pub url: String,
    /// The event types it receives (every one of `WEBHOOK_EVENTS` when subscribed to all).
    pub events: Vec<String>,
    /// Subscribed to every event, present and future.
    pub all_events: bool,
    /// Names of the custom headers sent (values are write-only).
    pub header_names: Vec<String>,
    pub enabled: bool,
    /// Why it is off, e.g. "failing for a day since …".
    pub disabled_reason: Option<String>,
    /// Failing since then (no success after it).
    pub failing_since: Option<DateTime<Utc>>,
    /// Deliveries waiting (first try or retry), and the last one's outcome.
    pub pending: i64,
    pub last_delivery: Option<WebhookDelivery>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /api/v1/webhooks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Name))]
    pub name: String,
    /// http(s) URL that receives a POST per event.
    pub url: String,
    /// Event types to receive; absent or empty: all of them.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = Vec<super::schema::WebhookEvent>))]
    pub events: Vec<String>,
    /// Extra headers sent with every delivery (e.g. an authorization token); write-only.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(value_type = super::schema::WebhookHeaders))]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `PUT /api/v1/webhooks/{id}`: absent fields are kept; `headers` replaces them all.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Name>))]
    pub name: Option<String>,
    pub url: Option<String>,
    /// Empty: all events.
    #[cfg_attr(feature = "server", schema(value_type = Option<Vec<super::schema::WebhookEvent>>))]
    pub events: Option<Vec<String>>,
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::WebhookHeaders>))]
    pub headers: Option<BTreeMap<String, String>>,
    /// Turning a webhook back on clears its failure record.
    pub enabled: Option<bool>,
}

/// The answer to creating a webhook: the only time its signing secret is shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks). Shown once.
    pub secret: String,
}

/// One event's delivery to one webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct WebhookDelivery {
    /// Also the `webhook-id` header: the same on every retry.
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: i64,
    pub event_type: String,
    /// pending, delivered or failed (given up after a day).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status of the last attempt, or its error.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct DeliveryPage {
    pub deliveries: Vec<WebhookDelivery>,
    pub total: i64,
}

/// `POST /api/v1/webhooks/{id}/test`: how the receiver answered a signed `webhook.test`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct WebhookTest {
    /// A 2xx answer.
    pub ok: bool,
    pub status: Option<i64>,
    pub latency_ms: f64,
    pub error: Option<String>,
}
