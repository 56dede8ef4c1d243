//! The admin page's webhooks: each with its events, state and recent deliveries; add one
//! (its signing secret is shown once), send a test, turn it off or on, delete it.

use leptos::prelude::*;
use uuid::Uuid;

use crate::api::{
    CreateWebhook, DeleteWebhook, SetWebhookEnabled, TestWebhook, list_webhooks, webhook_deliveries,
};
use crate::components::{ConfirmButton, ErrorNote, action_error, client_resource, loaded};
use crate::types::{WEBHOOK_EVENTS, Webhook, WebhookDelivery};

/// Recent deliveries listed under a webhook.
const RECENT: i64 = 10;

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[component]
pub fn WebhooksCard() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    let toggle = ServerAction::<SetWebhookEnabled>::new();
    let delete = ServerAction::<DeleteWebhook>::new();
    let test = ServerAction::<TestWebhook>::new();
    let hooks = client_resource(
        move || {
            (
                create.version().get(),
                toggle.version().get(),
                delete.version().get(),
                test.version().get(),
            )
        },
        |_| list_webhooks(),
    );
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let events = RwSignal::new(Vec::<String>::new());
    let header_name = RwSignal::new(String::new());
    let header_value = RwSignal::new(String::new());
    let create_error = action_error(create);
    let other_error = action_error(toggle);
    let delete_error = action_error(delete);
    let test_error = action_error(test);
    Effect::new(move |_| {
        if create.value().get().is_some_and(|r| r.is_ok()) {
            name.set(String::new());
            url.set(String::new());
            events.set(Vec::new());
            header_name.set(String::new());
            header_value.set(String::new());
        }
    });
    let secret = move || {
        create.value().get().and_then(|r| r.ok()).map(|c| {
            view! {
                <p class="new-key" data-testid="webhook-secret">
                    "Signing secret for “"{c.webhook.name}"” (copy it now; it is not shown again): "
                    <code>{c.secret}</code>
                </p>
            }
        })
    };
    let tested = move || {
        test.value().get().and_then(|r| r.ok()).map(|t| {
            let text = if t.ok {
                format!("Test delivered: {} in {:.0} ms.", t.status.unwrap_or(0), t.latency_ms)
            } else {
                format!("Test failed: {}.", t.error.unwrap_or_default())
            };
            view! { <p class=if t.ok { "ok" } else { "error" } role="status" data-testid="webhook-test-result">{text}</p> }
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateWebhook {
            name: name.get_untracked(),
            url: url.get_untracked(),
            events: events.get_untracked(),
            header_name: header_name.get_untracked(),
            header_value: header_value.get_untracked(),
        });
    };
    view! {
        <section class="card" data-testid="webhooks">
            <h2>"Webhooks"</h2>
            <p class="muted">
                "Other systems get the experiment events they subscribe to as signed POSTs (Standard Webhooks: "
                <code>"webhook-id"</code>", "<code>"webhook-timestamp"</code>", "<code>"webhook-signature"</code>
                "). Failed deliveries are retried for a day; a webhook failing for a day is turned off."
            </p>
            {secret}
            {tested}
            {loaded(hooks, move |list| {
                if list.is_empty() {
                    return view! { <p class="empty">"No webhooks yet."</p> }.into_any();
                }
                list.into_iter().map(|h| view! { <WebhookRow hook=h toggle delete test/> }).collect_view().into_any()
            })}
            <ErrorNote error=other_error/>
            <ErrorNote error=delete_error/>
            <ErrorNote error=test_error/>
            <form class="stack" data-testid="webhook-form" on:submit=submit>
                <h3>"Add a webhook"</h3>
                <div class="row">
                    <label>"Name"
                        <input required maxlength="200" data-field="name" prop:value=move || name.get()
                            on:input=move |ev| name.set(event_target_value(&ev))/>
                    </label>
                    <label class="grow">"URL"
                        <input type="url" required placeholder="https://ci.example.com/hooks/promptlooper" data-field="url"
                            prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev))/>
                    </label>
                </div>
                <fieldset>
                    <legend>"Events (none ticked: all of them)"</legend>
                    <div class="checks">
                        {WEBHOOK_EVENTS.iter().map(|e| {
                            let e = (*e).to_owned();
                            let key = e.clone();
                            let label = e.clone();
                            view! {
                                <label class="check">
                                    <input type="checkbox" data-event=e.clone()
                                        prop:checked=move || events.with(|l| l.contains(&key))
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            let e = e.clone();
                                            events.update(|l| { l.retain(|x| *x != e); if on { l.push(e); } });
                                        }/>
                                    {label}
                                </label>
                            }
                        }).collect_view()}
                    </div>
                </fieldset>
                <div class="row">
                    <label>"Header (optional)"
                        <input placeholder="X-Token" maxlength="100" data-field="header_name" prop:value=move || header_name.get()
                            on:input=move |ev| header_name.set(event_target_value(&ev))/>
                    </label>
                    <label class="grow">"Header value (write-only)"
                        <input type="password" autocomplete="off" data-field="header_value" prop:value=move || header_value.get()
                            on:input=move |ev| header_value.set(event_target_value(&ev))/>
                    </label>
                </div>
                <div><button type="submit" class="primary">"Add webhook"</button></div>
                <ErrorNote error=create_error/>
            </form>
        </section>
    }
}

#[component]
fn WebhookRow(
    hook: Webhook,
    toggle: ServerAction<SetWebhookEnabled>,
    delete: ServerAction<DeleteWebhook>,
    test: ServerAction<TestWebhook>,
) -> impl IntoView {
    let id: Uuid = hook.id;
    let deliveries = client_resource(
        move || test.version().get(),
        move |_| webhook_deliveries(id, RECENT),
    );
    let enabled = hook.enabled;
    let events = if hook.all_events {
        "all events".to_owned()
    } else {
        hook.events.join(", ")
    };
    let state = match (&hook.disabled_reason, hook.enabled, hook.failing_since) {
        (Some(why), false, _) => format!("off — {why}"),
        (None, false, _) => "off".to_owned(),
        (_, true, Some(since)) => format!("on, failing since {}", when(since)),
        _ => "on".to_owned(),
    };
    let question = format!("Delete the webhook “{}” and its delivery log?", hook.name);
    view! {
        <article class="webhook" data-testid="webhook" data-webhook=id.to_string()>
            <div class="card-head">
                <h3>{hook.name.clone()}</h3>
                <div class="row">
                    <button type="button" data-testid="webhook-test" on:click=move |_| { test.dispatch(TestWebhook { id }); }>"Send a test"</button>
                    <button type="button" on:click=move |_| { toggle.dispatch(SetWebhookEnabled { id, enabled: !enabled }); }>
                        {if enabled { "Turn off" } else { "Turn on" }}
                    </button>
                    <ConfirmButton label="Delete" question on_confirm=move || { delete.dispatch(DeleteWebhook { id }); }/>
                </div>
            </div>
            <dl class="facts">
                <div><dt>"URL"</dt><dd><code>{hook.url.clone()}</code></dd></div>
                <div><dt>"Events"</dt><dd>{events}</dd></div>
                <div><dt>"State"</dt><dd data-testid="webhook-state">{state}</dd></div>
                <div><dt>"Waiting"</dt><dd>{hook.pending}</dd></div>
                {(!hook.header_names.is_empty()).then(|| view! {
                    <div><dt>"Headers"</dt><dd>{hook.header_names.join(", ")}" (values hidden)"</dd></div>
                })}
            </dl>
            {loaded(deliveries, |page| {
                if page.deliveries.is_empty() {
                    return view! { <p class="muted">"No deliveries yet."</p> }.into_any();
                }
                view! {
                    <div class="scroll" tabindex="0">
                    <table class="table" data-testid="deliveries">
                        <caption class="sr-only">"Recent deliveries"</caption>
                        <thead><tr>
                            <th scope="col">"Event"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th>
                            <th scope="col">"Answer"</th><th scope="col">"ms"</th><th scope="col">"Queued"</th><th scope="col">"Next try"</th>
                        </tr></thead>
                        <tbody>{page.deliveries.into_iter().map(delivery_row).collect_view()}</tbody>
                    </table>
                    </div>
                    <p class="meta">{if page.total == 1 { "1 delivery in all".to_owned() } else { format!("{} deliveries in all", page.total) }}</p>
                }.into_any()
            })}
        </article>
    }
}

fn delivery_row(d: WebhookDelivery) -> impl IntoView {
    let answer = match (d.last_status, &d.last_error) {
        (Some(s), _) if (200..300).contains(&s) => s.to_string(),
        (_, Some(e)) => e.clone(),
        (Some(s), None) => s.to_string(),
        (None, None) => "–".to_owned(),
    };
    view! {
        <tr data-testid="delivery" data-status=d.status.clone()>
            <td><code>{d.event_type.clone()}</code></td>
            <td><span class=format!("status {}", d.status)>{d.status.clone()}</span></td>
            <td>{d.attempts}</td>
            <td class="small">{answer}</td>
            <td>{d.last_latency_ms.map(|l| format!("{l:.0}")).unwrap_or_default()}</td>
            <td class="small">{when(d.created_at)}</td>
            <td class="small">{d.next_attempt_at.map(when).unwrap_or_default()}</td>
        </tr>
    }
}
