//! Live events in the browser: an `EventSource` on one of the server's SSE paths. Events are
//! buffered and handed to the page in batches at most every [`FLUSH_MS`], so hundreds of
//! events a second do not redraw the page hundreds of times. When the connection drops (a
//! server restart), the link reads "reconnecting": the browser retries with `Last-Event-ID`
//! (or, if it gave up, a new connection resumes with `?after=`), the server replays what was
//! missed, and the page is told to re-read its state, so its totals end equal to REST's.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;

use crate::types::Event;

/// How long events wait to be handed over together.
pub const FLUSH_MS: u64 = 100;

/// The state of the connection, as the page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Live,
    Reconnecting,
}

impl Link {
    pub fn label(self) -> &'static str {
        match self {
            Link::Connecting => "connecting…",
            Link::Live => "live",
            Link::Reconnecting => "reconnecting…",
        }
    }
}

/// A small badge with the link's state.
#[component]
pub fn LinkBadge(link: RwSignal<Link>) -> impl IntoView {
    view! {
        <span class=move || format!("conn {:?}", link.get()).to_lowercase() role="status" data-testid="link">
            {move || link.get().label()}
        </span>
    }
}

/// Streams the events at `url()` (an SSE path; re-opened when it changes) once `start()` is
/// `Some(after)`: events after that id are replayed first. `on_batch` receives events in the
/// order they happened; `on_resync` runs after a reconnection.
pub fn live_events(
    url: impl Fn() -> String + 'static,
    start: impl Fn() -> Option<i64> + 'static,
    on_batch: impl Fn(Vec<Event>) + 'static,
    on_resync: impl Fn() + 'static,
) -> RwSignal<Link> {
    let link = RwSignal::new(Link::Connecting);
    #[cfg(feature = "hydrate")]
    client::open(link, url, start, on_batch, on_resync);
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, start, on_batch, on_resync);
    link
}

/// Runs `f` at most once per `every_ms`, the last call never lost (trailing).
pub fn throttle(every_ms: f64, f: impl Fn() + 'static) -> impl Fn() + Clone + 'static {
    let f = Rc::new(f);
    let last = Rc::new(Cell::new(0.0f64));
    let queued = Rc::new(Cell::new(false));
    move || {
        let now = now_ms();
        let wait = last.get() + every_ms - now;
        if wait <= 0.0 {
            last.set(now);
            f();
        } else if !queued.replace(true) {
            let (f, last, queued) = (f.clone(), last.clone(), queued.clone());
            set_timeout(
                move || {
                    queued.set(false);
                    last.set(now_ms());
                    f();
                },
                Duration::from_millis(wait as u64),
            );
        }
    }
}

fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

#[cfg(feature = "hydrate")]
fn js_now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

#[cfg(feature = "hydrate")]
mod client {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::{EventSource, MessageEvent};

    use super::{FLUSH_MS, Link};
    use crate::types::{EVENT_TYPES, Event};

    type Callback = Closure<dyn FnMut(web_sys::Event)>;

    struct Inner {
        source: Option<EventSource>,
        /// Keeps the listeners alive while the source is open.
        listeners: Vec<Callback>,
        buffer: Vec<Event>,
        flush_pending: bool,
        last_id: i64,
        dropped: bool,
        retries: u32,
        generation: u32,
        on_batch: Rc<dyn Fn(Vec<Event>)>,
        on_resync: Rc<dyn Fn()>,
    }

    type Shared = Rc<RefCell<Inner>>;

    pub fn open(
        link: RwSignal<Link>,
        url: impl Fn() -> String + 'static,
        start: impl Fn() -> Option<i64> + 'static,
        on_batch: impl Fn(Vec<Event>) + 'static,
        on_resync: impl Fn() + 'static,
    ) {
        let inner: Shared = Rc::new(RefCell::new(Inner {
            source: None,
            listeners: Vec::new(),
            buffer: Vec::new(),
            flush_pending: false,
            last_id: 0,
            dropped: false,
            retries: 0,
            generation: 0,
            on_batch: Rc::new(on_batch),
            on_resync: Rc::new(on_resync),
        }));
        let effect_inner = inner.clone();
        Effect::new(move |_| {
            let (url, after) = (url(), start());
            close(&effect_inner);
            if let Some(after) = after {
                {
                    let mut i = effect_inner.borrow_mut();
                    i.last_id = after;
                    i.generation += 1;
                    i.dropped = false;
                }
                connect(&effect_inner, link, url);
            }
        });
        let cleanup = SendWrapper::new(inner);
        on_cleanup(move || {
            let inner = cleanup.take();
            inner.borrow_mut().generation += 1;
            close(&inner);
        });
    }

    fn close(inner: &Shared) {
        let mut i = inner.borrow_mut();
        if let Some(source) = i.source.take() {
            source.close();
        }
        i.listeners.clear();
    }

    fn with_after(url: &str, after: i64) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}after={after}")
    }

    fn connect(inner: &Shared, link: RwSignal<Link>, url: String) {
        let after = inner.borrow().last_id;
        let Ok(source) = EventSource::new(&with_after(&url, after)) else {
            link.set(Link::Reconnecting);
            return;
        };
        let mut listeners = Vec::new();
        let on_event = {
            let inner = inner.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let Some(message) = e.dyn_ref::<MessageEvent>() else {
                    return;
                };
                let Some(data) = message.data().as_string() else {
                    return;
                };
                if let Ok(event) = serde_json::from_str::<Event>(&data) {
                    receive(&inner, event);
                }
            })
        };
        for t in EVENT_TYPES {
            let _ = source.add_event_listener_with_callback(t, on_event.as_ref().unchecked_ref());
        }
        listeners.push(on_event);
        let on_open = {
            let inner = inner.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                link.set(Link::Live);
                let resync = {
                    let mut i = inner.borrow_mut();
                    i.retries = 0;
                    std::mem::take(&mut i.dropped)
                };
                if resync {
                    let resync = inner.borrow().on_resync.clone();
                    resync();
                }
            })
        };
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        listeners.push(on_open);
        let on_error = {
            let inner = inner.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                link.set(Link::Reconnecting);
                let (closed, generation, delay) = {
                    let mut i = inner.borrow_mut();
                    i.dropped = true;
                    let closed = i
                        .source
                        .as_ref()
                        .is_some_and(|s| s.ready_state() == EventSource::CLOSED);
                    i.retries = (i.retries + 1).min(5);
                    (closed, i.generation, 500u64 << i.retries.min(3))
                };
                // The browser retries by itself (with Last-Event-ID) unless it gave up.
                if closed {
                    let inner = inner.clone();
                    let url = url.clone();
                    set_timeout(
                        move || {
                            if inner.borrow().generation == generation {
                                close(&inner);
                                connect(&inner, link, url);
                            }
                        },
                        Duration::from_millis(delay),
                    );
                }
            })
        };
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        listeners.push(on_error);
        let mut i = inner.borrow_mut();
        i.source = Some(source);
        i.listeners = listeners;
    }

    fn receive(inner: &Shared, event: Event) {
        let schedule = {
            let mut i = inner.borrow_mut();
            if event.id <= i.last_id {
                return;
            }
            i.last_id = event.id;
            i.buffer.push(event);
            !std::mem::replace(&mut i.flush_pending, true)
        };
        if schedule {
            let inner = inner.clone();
            set_timeout(move || flush(&inner), Duration::from_millis(FLUSH_MS));
        }
    }

    fn flush(inner: &Shared) {
        let batch = {
            let mut i = inner.borrow_mut();
            i.flush_pending = false;
            std::mem::take(&mut i.buffer)
        };
        if !batch.is_empty() {
            let on_batch = inner.borrow().on_batch.clone();
            on_batch(batch);
        }
    }
}
