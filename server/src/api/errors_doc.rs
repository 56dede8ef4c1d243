//! Declares, on every operation of the OpenAPI document, the error answers that every route of
//! its kind can give (each a JSON [`ErrorBody`](super::error::ErrorBody)), so the document says
//! exactly what the API does:
//!
//! - 401 and 403 on every operation that needs a caller (no or a bad credential; a role or a
//!   guest that may not do it);
//! - 400 where there are parameters or a body to be malformed, 404 where a path names a
//!   resource, 422 where parameters or a body are checked;
//! - 413 and 415 where a JSON body is read (too large; not `application/json`).
//!
//! An operation's own declaration of a status wins.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

/// Adds the common error answers to every operation of `doc`.
pub fn declare(doc: &mut OpenApi) {
    let global = doc.security.clone().unwrap_or_default();
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            declare_operation(op, !global.is_empty());
        }
    }
}

fn declare_operation(op: &mut Operation, secured_by_default: bool) {
    let secured = match &op.security {
        None => secured_by_default,
        Some(reqs) => reqs.iter().any(|r| {
            serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        }),
    };
    let params = op.parameters.as_deref().unwrap_or_default();
    let in_path = params.iter().any(|p| p.parameter_in == ParameterIn::Path);
    let in_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let json_body = op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.keys().any(|k| k == "application/json"));
    let body = op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                        )
                        .build(),
                )
            });
    };
    if secured {
        add(
            "401",
            "No credential, or one that is invalid, expired or revoked",
        );
        add("403", "The caller's role may not do this");
    }
    if in_path || in_query || body {
        add("400", "A malformed parameter or body; the error names it");
    }
    if in_path {
        add("404", "No such resource");
    }
    if in_query || body {
        add(
            "422",
            "A parameter or field out of its bounds; the error names it",
        );
    }
    if json_body {
        add("413", "The body is larger than the limit");
        add("415", "The body is not `application/json`");
    }
}
