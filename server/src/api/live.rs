//! Live event streams: Server-Sent Events under `/api/v1/…/events/stream` and the spec's
//! WebSocket paths `/ws/experiments/{id}` and `/ws/dashboard`. Both send the same JSON events
//! as the timeline. A client that reconnects with `Last-Event-ID` (SSE) or `?after=` (both)
//! first receives what it missed, from the database.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use engine::store::events::EventFilter;
use engine::types::Event;
use engine::{Core, Error};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::IntoParams;
use uuid::Uuid;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Authed, IdPath, QueryParams};
use crate::state::AppState;

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Comma-separated event types to receive (default all).
    #[serde(default, rename = "type")]
    #[param(
        pattern = "^[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:experiment\\.started|experiment\\.paused|experiment\\.resumed|experiment\\.redirected|experiment\\.stopped|experiment\\.completed|experiment\\.forked|run\\.started|run\\.completed|run\\.cached|run\\.failed|stage\\.completed|budget\\.exhausted|configuration\\.approved|configuration\\.rejected|new_best_found|sweep\\.round|configuration\\.promoted|configuration\\.pruned|prompt\\.proposed|prompt\\.proposal_failed|scoring\\.started|scoring\\.completed|scoring\\.failed|human_needed)?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:,[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*(?:experiment\\.started|experiment\\.paused|experiment\\.resumed|experiment\\.redirected|experiment\\.stopped|experiment\\.completed|experiment\\.forked|run\\.started|run\\.completed|run\\.cached|run\\.failed|stage\\.completed|budget\\.exhausted|configuration\\.approved|configuration\\.rejected|new_best_found|sweep\\.round|configuration\\.promoted|configuration\\.pruned|prompt\\.proposed|prompt\\.proposal_failed|scoring\\.started|scoring\\.completed|scoring\\.failed|human_needed)?[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*)*$"
    )]
    pub event_type: Option<String>,
    /// Replay events after this id first.
    #[serde(default)]
    pub after: Option<i64>,
}

/// Most events replayed on (re)connection.
const REPLAY_MAX: i64 = 1000;

struct Feed {
    core: Core,
    rx: broadcast::Receiver<Arc<Event>>,
    experiment_id: Option<Uuid>,
    types: Option<String>,
    backlog: VecDeque<Event>,
    /// Ids already sent from the database (live copies of them are skipped).
    replayed: HashSet<i64>,
    last_id: i64,
}

impl Feed {
    /// Subscribes first, then reads the backlog, so nothing falls between the two.
    async fn open(
        core: &Core,
        experiment_id: Option<Uuid>,
        types: Option<String>,
        after: Option<i64>,
    ) -> Result<Feed, Error> {
        let rx = core.hub.subscribe();
        let mut feed = Feed {
            core: core.clone(),
            rx,
            experiment_id,
            types,
            backlog: VecDeque::new(),
            replayed: HashSet::new(),
            last_id: after.unwrap_or(0),
        };
        if let Some(after) = after {
            feed.replay(after).await?;
        }
        Ok(feed)
    }

    async fn replay(&mut self, after: i64) -> Result<(), Error> {
        let filter = EventFilter {
            experiment_id: self.experiment_id,
            sweep_id: None,
            types: self.types.clone(),
            after: Some(after),
        };
        let (events, _) =
            engine::store::events::list(&self.core.db, &filter, REPLAY_MAX, 0).await?;
        for e in events {
            self.replayed.insert(e.id);
            self.backlog.push_back(e);
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                self.last_id = self.last_id.max(e.id);
                return Some(e);
            }
            match self.rx.recv().await {
                Ok(e) => {
                    if self.replayed.contains(&e.id)
                        || !engine::events::matches(&e, self.experiment_id, self.types.as_deref())
                    {
                        continue;
                    }
                    self.last_id = self.last_id.max(e.id);
                    return Some((*e).clone());
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "a live stream lagged; catching up from the timeline"
                    );
                    let after = self.last_id;
                    if self.replay(after).await.is_err() {
                        return None;
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn stream(feed: Feed) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(feed, |mut feed| async move {
        let e = feed.next().await?;
        let sse = SseEvent::default()
            .id(e.id.to_string())
            .event(e.event_type.clone())
            .data(serde_json::to_string(&e).unwrap_or_default());
        Some((Ok(sse), feed))
    })
}

fn last_event_id(headers: &HeaderMap, after: Option<i64>) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(after)
}

async fn open_feed(
    s: &AppState,
    experiment_id: Option<Uuid>,
    q: &StreamQuery,
    after: Option<i64>,
) -> Result<Feed, Error> {
    if let Some(id) = experiment_id
        && engine::store::experiments::get(&s.core.db, id)
            .await?
            .is_none()
    {
        return Err(Error::NotFound("experiment"));
    }
    let types = engine::events::parse_types(q.event_type.as_deref())?;
    Feed::open(&s.core, experiment_id, types, after).await
}

/// Live events of one experiment (Server-Sent Events; `Last-Event-ID` resumes).
#[utoipa::path(get, path = "/api/v1/experiments/{id}/events/stream", tag = "events",
    params(("id" = Uuid, Path), StreamQuery),
    responses((status = 200, content_type = "text/event-stream", description = "One `data:` JSON event per message"),
              (status = 404, body = ErrorBody)))]
pub async fn experiment_stream(
    State(s): State<AppState>,
    Authed(_a): Authed,
    IdPath(id): IdPath,
    headers: HeaderMap,
    QueryParams(q): QueryParams<StreamQuery>,
) -> ApiResult<Response> {
    let feed = open_feed(&s, Some(id), &q, last_event_id(&headers, q.after)).await?;
    Ok(Sse::new(stream(feed).take_until(s.stopped()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Live events across all experiments (Server-Sent Events; `Last-Event-ID` resumes).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(StreamQuery),
    responses((status = 200, content_type = "text/event-stream", description = "One `data:` JSON event per message")))]
pub async fn global_stream(
    State(s): State<AppState>,
    Authed(_a): Authed,
    headers: HeaderMap,
    QueryParams(q): QueryParams<StreamQuery>,
) -> ApiResult<Response> {
    let feed = open_feed(&s, None, &q, last_event_id(&headers, q.after)).await?;
    Ok(Sse::new(stream(feed).take_until(s.stopped()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// `GET /ws/experiments/{id}`: the experiment's live events over a WebSocket.
pub async fn experiment_ws(
    State(s): State<AppState>,
    Authed(_a): Authed,
    IdPath(id): IdPath,
    QueryParams(q): QueryParams<StreamQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let feed = open_feed(&s, Some(id), &q, q.after).await?;
    let stopped = s.stopped();
    Ok(ws.on_upgrade(move |socket| pump(socket, feed, stopped)))
}

/// `GET /ws/dashboard`: every experiment's live events over a WebSocket.
pub async fn dashboard_ws(
    State(s): State<AppState>,
    Authed(_a): Authed,
    QueryParams(q): QueryParams<StreamQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let feed = open_feed(&s, None, &q, q.after).await?;
    let stopped = s.stopped();
    Ok(ws.on_upgrade(move |socket| pump(socket, feed, stopped)))
}

/// Sends events as JSON text messages until either side goes away or the server stops;
/// pings every 30 s.
async fn pump(
    mut socket: WebSocket,
    mut feed: Feed,
    stopped: impl std::future::Future<Output = ()> + Send,
) {
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            event = feed.next() => {
                let Some(e) = event else { break };
                let text = serde_json::to_string(&e).unwrap_or_default();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
}
