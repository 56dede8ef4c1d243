//! `/admin`: system stats, LLM endpoints, model prices, the response cache, webhooks, settings,
//! users and API keys (admins only).

mod cache;
mod webhooks;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{
    CreateApiKey, CreateEndpoint, CreateUser, DeleteEndpoint, DeleteUser, RevokeApiKey,
    SaveSettings, TestEndpoint, get_settings, get_stats, list_api_keys, list_endpoints, list_users,
};
use crate::components::shell::AppShell;
use crate::components::{
    ConfirmButton, ErrorNote, action_error, client_resource, error_view, reset_on_success,
};
use crate::types::{Me, Role};

#[component]
pub fn AdminPage() -> impl IntoView {
    view! {
        <Title text="Admin · PromptLooper"/>
        <AppShell>
            <AdminGate/>
        </AppShell>
    }
}

#[component]
fn AdminGate() -> impl IntoView {
    let is_admin = use_context::<Me>().is_some_and(|me| me.role == Role::Admin);
    if is_admin {
        view! {
            <h1>"Admin"</h1>
            <StatsCard/>
            <EndpointsCard/>
            <cache::PricesCard/>
            <cache::CacheCard/>
            <webhooks::WebhooksCard/>
            <SettingsCard/>
            <UsersCard/>
            <KeysCard/>
        }
        .into_any()
    } else {
        view! { <p class="error">"Only admins can see this page."</p> }.into_any()
    }
}

#[component]
fn SettingsCard() -> impl IntoView {
    let save = ServerAction::<SaveSettings>::new();
    let settings = client_resource(move || save.version().get(), |_| get_settings());
    let error = action_error(save);
    let saved = move || matches!(save.value().get(), Some(Ok(_)));
    view! {
        <section class="card">
            <h2>"Settings"</h2>
            {move || match settings.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(result) => match result {
                        Ok(s) => view! {
                            <ActionForm action=save attr:class="stack" attr:data-testid="settings-form">
                                <label class="check">
                                    <input type="checkbox" name="allow_guest_access" value="on" checked=s.allow_guest_access/>
                                    "Allow guest access (anonymous visitors can read, never write)"
                                </label>
                                <label class="check">
                                    <input type="checkbox" name="allow_python_scorers" value="on" checked=s.allow_python_scorers/>
                                    "Allow Python scorers (they run python3 unsandboxed, with the server's permissions)"
                                </label>
                                <label class="check">
                                    <input type="checkbox" name="allow_private_webhook_targets" value="on" checked=s.allow_private_webhook_targets/>
                                    "Allow webhooks to private addresses (this machine, the local network, cloud metadata)"
                                </label>
                                <label>"Instance name"
                                    <input name="instance_name" required maxlength="200" value=s.instance_name/>
                                </label>
                                <label>"Default model"
                                    <input name="default_model" maxlength="200" value=s.default_model.unwrap_or_default()/>
                                </label>
                                <label>"API token lifetime (minutes)"
                                    <input type="number" name="token_ttl_minutes" min="5" max="43200" value=s.token_ttl_minutes/>
                                </label>
                                <button type="submit" class="primary">"Save settings"</button>
                                {move || saved().then(|| view! { <span class="ok">"Saved."</span> })}
                                <ErrorNote error/>
                            </ActionForm>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                }}
        </section>
    }
}

#[component]
fn UsersCard() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let users = client_resource(
        move || (create.version().get(), delete.version().get()),
        |_| list_users(),
    );
    let create_error = action_error(create);
    let delete_error = action_error(delete);
    let form = NodeRef::new();
    reset_on_success(create, form);
    let me = use_context::<Me>().and_then(|m| m.user).map(|u| u.id);
    view! {
        <section class="card">
            <h2>"Users"</h2>
            {move || match users.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(result) => match result {
                        Ok(list) => view! {
                            <table tabindex="0" class="table">
                                <thead><tr><th>"Username"</th><th>"Role"</th><th>"Created"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|u| {
                                        let id = u.id;
                                        let question = format!("Delete user {}?", u.username);
                                        let is_me = me == Some(id);
                                        view! {
                                            <tr>
                                                <td>{u.username}</td>
                                                <td>{u.role.to_string()}</td>
                                                <td>{u.created_at.format("%Y-%m-%d").to_string()}</td>
                                                <td>{(!is_me).then(|| view! {
                                                    <ConfirmButton label="Delete" question on_confirm=move || { delete.dispatch(DeleteUser { id }); }/>
                                                })}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                }}
            <ErrorNote error=delete_error/>
            <ActionForm action=create node_ref=form attr:class="inline-form">
                <input name="username" placeholder="username" required maxlength="64" aria-label="Username"/>
                <input type="password" name="password" placeholder="password (8+ characters)" required minlength="8" aria-label="Password"/>
                <RoleSelect/>
                <button type="submit" class="primary">"Add user"</button>
                <ErrorNote error=create_error/>
            </ActionForm>
        </section>
    }
}

#[component]
fn KeysCard() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = client_resource(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_keys(),
    );
    let create_error = action_error(create);
    let form = NodeRef::new();
    reset_on_success(create, form);
    let new_key = move || create.value().get().and_then(|r| r.ok()).map(|k| k.key);
    view! {
        <section class="card">
            <h2>"API keys"</h2>
            <p class="muted">"Programs and agents send a key as " <code>"Authorization: Bearer <key>"</code> ". A key is shown once, when it is created."</p>
            {move || new_key().map(|key| view! {
                <p class="new-key" data-testid="new-key">"New key (copy it now): " <code>{key}</code></p>
            })}
            {move || match keys.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(result) => match result {
                        Ok(list) => view! {
                            <table tabindex="0" class="table">
                                <thead><tr><th>"Name"</th><th>"Key"</th><th>"Role"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|k| {
                                        let id = k.id;
                                        let active = k.revoked_at.is_none();
                                        let question = format!("Revoke {}? Programs using it stop working at once.", k.name);
                                        view! {
                                            <tr>
                                                <td>{k.name}</td>
                                                <td><code>{k.prefix}"…"</code></td>
                                                <td>{k.role.to_string()}</td>
                                                <td>{k.last_used_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into())}</td>
                                                <td>{if active { "active" } else { "revoked" }}</td>
                                                <td>{active.then(|| view! {
                                                    <ConfirmButton label="Revoke" question on_confirm=move || { revoke.dispatch(RevokeApiKey { id }); }/>
                                                })}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                }}
            <ActionForm action=create node_ref=form attr:class="inline-form">
                <input name="name" placeholder="key name, e.g. ci" required maxlength="200" aria-label="Key name"/>
                <RoleSelect/>
                <button type="submit" class="primary">"Create key"</button>
                <ErrorNote error=create_error/>
            </ActionForm>
        </section>
    }
}

/// The role picker shared by the user and API-key forms (member by default).
#[component]
fn RoleSelect() -> impl IntoView {
    view! {
        <select name="role" aria-label="Role">
            <option value="member" selected>"member"</option>
            <option value="guest">"guest (read-only)"</option>
            <option value="admin">"admin"</option>
        </select>
    }
}

/// System-wide numbers, as `GET /api/v1/admin/stats` reports them.
#[component]
fn StatsCard() -> impl IntoView {
    let stats = client_resource(|| (), |_| get_stats());
    view! {
        <section class="card">
            <h2>"System"</h2>
            {move || match stats.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(result) => match result {
                        Ok(s) => {
                            let hit_rate = s.cache_hit_rate.map_or("–".to_owned(), |r| format!("{:.0} %", r * 100.0));
                            let uptime = format!("{}h {:02}m", s.uptime_seconds / 3600, s.uptime_seconds / 60 % 60);
                            let cells = [
                                ("Users", s.users.to_string()),
                                ("Projects", s.projects.to_string()),
                                ("Experiments", s.experiments.to_string()),
                                ("Runs", s.runs.total.to_string()),
                                ("Completed / failed / cached", format!("{} / {} / {}", s.runs.completed, s.runs.failed, s.runs.cached)),
                                ("Cache hit rate", hit_rate),
                                ("Tokens in / out", format!("{} / {}", s.tokens_in, s.tokens_out)),
                                ("Estimated cost", format!("${:.2}", s.cost_estimate)),
                                ("Active API keys", s.active_api_keys.to_string()),
                                ("Database", s.database),
                                ("Version", s.version),
                                ("Uptime", uptime),
                            ];
                            view! {
                                <dl class="stats" data-testid="stats">
                                    {cells.into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd>{v}</dd></div> }).collect_view()}
                                </dl>
                            }.into_any()
                        }
                        Err(e) => error_view(e),
                    }
                }}
        </section>
    }
}

/// An endpoint's limits as a person reads them: `4 at once · 120 rpm · 40,000 tpm`.
fn limits_text(e: &crate::types::Endpoint) -> String {
    let group = |n: i64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let parts: Vec<String> = [
        e.max_concurrency.map(|n| format!("{} at once", group(n))),
        e.rpm.map(|n| format!("{} rpm", group(n))),
        e.tpm.map(|n| format!("{} tpm", group(n))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// LLM endpoints: list, add (the key is write-only), test connectivity, delete.
#[component]
fn EndpointsCard() -> impl IntoView {
    let create = ServerAction::<CreateEndpoint>::new();
    let delete = ServerAction::<DeleteEndpoint>::new();
    let test = ServerAction::<TestEndpoint>::new();
    let endpoints = client_resource(
        move || (create.version().get(), delete.version().get()),
        |_| list_endpoints(),
    );
    let create_error = action_error(create);
    let delete_error = action_error(delete);
    let form = NodeRef::new();
    reset_on_success(create, form);
    let tested = RwSignal::new(None::<uuid::Uuid>);
    let test_result = move |id: uuid::Uuid| {
        (tested.get() == Some(id)).then(|| match test.value().get() {
            None => "testing…".to_owned(),
            Some(Ok(t)) if t.ok => {
                format!("ok · {} models · {:.0} ms", t.models.len(), t.latency_ms)
            }
            Some(Ok(t)) => format!("failed: {}", t.error.unwrap_or_default()),
            Some(Err(e)) => format!("failed: {e}"),
        })
    };
    view! {
        <section class="card">
            <h2>"LLM endpoints"</h2>
            {move || match endpoints.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    Some(result) => match result {
                        Ok(list) => view! {
                            <table tabindex="0" class="table" data-testid="endpoints">
                                <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Base URL"</th><th>"Key"</th><th>"Limits"</th><th>"Check"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|e| {
                                        let id = e.id;
                                        let question = format!("Delete endpoint {}?", e.name);
                                        view! {
                                            <tr data-endpoint=e.name.clone()>
                                                <td>{e.name.clone()}</td>
                                                <td>{e.kind.as_str()}</td>
                                                <td class="small">{if e.base_url.is_empty() { "built in".to_owned() } else { e.base_url.clone() }}</td>
                                                <td><code>{e.api_key_hint.clone().unwrap_or_else(|| "none".into())}</code></td>
                                                <td class="small" data-testid="limits">{limits_text(&e)}</td>
                                                <td>
                                                    <button on:click=move |_| { tested.set(Some(id)); test.dispatch(TestEndpoint { id }); }>"Test"</button>
                                                    <span class="small test-result">{move || test_result(id)}</span>
                                                </td>
                                                <td><ConfirmButton label="Delete" question on_confirm=move || { delete.dispatch(DeleteEndpoint { id }); }/></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                }}
            <ErrorNote error=delete_error/>
            <ActionForm action=create node_ref=form attr:class="inline-form" attr:data-testid="endpoint-form">
                <input name="name" placeholder="name" required maxlength="200" aria-label="Endpoint name"/>
                <select name="kind" aria-label="Kind">
                    <option value="openai" selected>"OpenAI-compatible"</option>
                    <option value="anthropic">"Anthropic"</option>
                    <option value="simulated">"Simulated"</option>
                </select>
                <input name="base_url" placeholder="https://api.openai.com/v1" aria-label="Base URL"/>
                <input type="password" name="api_key" placeholder="API key (optional)" autocomplete="off" aria-label="API key"/>
                <input name="max_concurrency" inputmode="numeric" placeholder="calls at once" size="8" aria-label="At most this many calls at once (optional)"/>
                <input name="rpm" inputmode="numeric" placeholder="requests/min" size="9" aria-label="Requests per minute (optional)"/>
                <input name="tpm" inputmode="numeric" placeholder="tokens/min" size="9" aria-label="Tokens per minute (optional)"/>
                <button type="submit" class="primary">"Add endpoint"</button>
                <ErrorNote error=create_error/>
            </ActionForm>
        </section>
    }
}
