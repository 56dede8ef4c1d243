//! Cache keys: SHA-256 over a canonical JSON encoding (object keys sorted, no whitespace) of
//! everything that determines an LLM call's answer. Same key ⇒ identical request.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::providers::Message;
use crate::types::{EndpointKind, Params};

/// Bump when the key's contents change, so old entries stop matching.
const KEY_VERSION: u32 = 1;

/// JSON with object keys sorted at every level, whatever the map type in use.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The identity of one call: where it goes, what is sent, for which item, stage and repeat.
pub struct CallKey<'a> {
    pub kind: EndpointKind,
    pub base_url: &'a str,
    pub model: &'a str,
    pub messages: &'a [Message],
    pub params: &'a Params,
    pub input: &'a Value,
    pub stage_index: usize,
    pub repeat_index: u32,
}

pub fn call_key(k: &CallKey<'_>) -> String {
    let material = json!({
        "v": KEY_VERSION,
        "provider": k.kind.as_str(),
        // Endpoints of one kind at one URL answer alike; the endpoint's id and name do not matter.
        "base_url": if k.kind == EndpointKind::Simulated { "" } else { k.base_url.trim_end_matches('/') },
        "model": k.model,
        "messages": k.messages,
        "params": k.params,
        "input": k.input,
        "stage": k.stage_index,
        "repeat": k.repeat_index,
    });
    sha256_hex(&canonical_json(&material))
}

/// Per-key locks for calls in progress. The first caller of a key holds its lock while it
/// calls the provider and fills the cache; later callers of the same key wait, then find the
/// answer in the cache. Entries are dropped when no one holds them.
#[derive(Debug, Default)]
pub struct InFlight(
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
);

/// Held while a call for one key is in progress (and until its answer is recorded).
pub struct InFlightGuard {
    owner: std::sync::Arc<InFlight>,
    key: String,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Whether another caller held the key first.
    pub waited: bool,
}

impl InFlight {
    pub async fn lock(self: &std::sync::Arc<Self>, key: &str) -> InFlightGuard {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        InFlightGuard {
            owner: self.clone(),
            key: key.to_owned(),
            _guard: Some(guard),
            waited: false,
        }
    }

    /// Like `lock`, and says whether another caller held the key first (`waited`): only then
    /// may the cache have changed since the caller last looked.
    pub async fn lock_noting_wait(self: &std::sync::Arc<Self>, key: &str) -> InFlightGuard {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.to_owned()).or_default().clone()
        };
        let (guard, waited) = match lock.clone().try_lock_owned() {
            Ok(guard) => (guard, false),
            Err(_) => (lock.lock_owned().await, true),
        };
        InFlightGuard {
            owner: self.clone(),
            key: key.to_owned(),
            _guard: Some(guard),
            waited,
        }
    }

    /// Keys currently locked or waited for (for tests).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self._guard.take();
        let mut map = self.owner.0.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map and nobody else holds it: forget the entry.
        if map
            .get(&self.key)
            .is_some_and(|l| std::sync::Arc::strong_count(l) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::providers::Role;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[{"d":1,"c":2}],"x":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[{"c":2,"d":1}]},"b":1}"#
        );
    }

    #[test]
    fn keys_change_with_every_part_and_only_then() {
        let messages = vec![Message {
            role: Role::User,
            content: "hi".into(),
        }];
        let params = Params {
            temperature: Some(0.2),
            ..Params::default()
        };
        let input = json!({"q": "hi"});
        let base = CallKey {
            kind: EndpointKind::Openai,
            base_url: "http://x/v1/",
            model: "m",
            messages: &messages,
            params: &params,
            input: &input,
            stage_index: 0,
            repeat_index: 0,
        };
        let k = call_key(&base);
        assert_eq!(k.len(), 64);
        assert_eq!(
            k,
            call_key(&CallKey {
                base_url: "http://x/v1",
                ..base
            }),
            "a trailing slash is the same URL"
        );
        assert_ne!(k, call_key(&CallKey { model: "n", ..base }));
        assert_ne!(
            k,
            call_key(&CallKey {
                stage_index: 1,
                ..base
            })
        );
        assert_ne!(
            k,
            call_key(&CallKey {
                repeat_index: 1,
                ..base
            })
        );
        let hotter = Params {
            temperature: Some(0.3),
            ..Params::default()
        };
        assert_ne!(
            k,
            call_key(&CallKey {
                params: &hotter,
                ..base
            })
        );
        let other_input = json!({"q": "ho"});
        assert_ne!(
            k,
            call_key(&CallKey {
                input: &other_input,
                ..base
            })
        );
    }
}
