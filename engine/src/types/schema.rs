//! Schemas of the OpenAPI document that one derive attribute cannot state: text rules as the
//! patterns of [`crate::validate`], and a few maps and unions. Fields name them with
//! `#[schema(value_type = …)]`; they are documentation only (the checks are the engine's).

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::validate;

/// A string schema: a pattern, an optional length limit, a description.
fn text(pattern: &str, max_length: Option<usize>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .max_length(max_length)
        .description(Some(description))
        .into()
}

/// `ToSchema` for types whose schema is written by hand: the name the document lists it under.
macro_rules! named {
    ($($ty:ty => $name:expr),+ $(,)?) => {
        $(impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        })+
    };
}

macro_rules! text_schema {
    ($(#[doc = $doc:literal])+ $ty:ident, $pattern:expr, $max:expr) => {
        $(#[doc = $doc])+
        pub struct $ty;

        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                let lines: &[&str] = &[$($doc),+];
                let description: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
                text($pattern, $max, &description.join(" "))
            }
        }

        named!($ty => stringify!($ty));
    };
}

text_schema!(
    /// A display name: 1 to 200 characters once surrounding whitespace is trimmed (it is
    /// stored trimmed), none of them a control character.
    Name,
    validate::NAME_PATTERN,
    None
);

text_schema!(
    /// A model name: not only whitespace, at most 200 bytes (UTF-8).
    ModelName,
    validate::NOT_BLANK_PATTERN,
    Some(200)
);

text_schema!(
    /// Text that is not only whitespace.
    NotBlank,
    validate::NOT_BLANK_PATTERN,
    None
);

text_schema!(
    /// An item's id, split or tag: not only whitespace, no control characters, at most 200
    /// bytes (UTF-8).
    ItemText,
    validate::PRINTABLE_PATTERN,
    Some(200)
);

text_schema!(
    /// A secret such as an API key: not only whitespace, no control characters, at most 4,096
    /// bytes (UTF-8). Write-only.
    Secret,
    validate::PRINTABLE_PATTERN,
    Some(4096)
);

text_schema!(
    /// A user template (Jinja2 syntax): not only whitespace, at most 100,000 bytes (UTF-8).
    UserTemplate,
    validate::NOT_BLANK_PATTERN,
    Some(100_000)
);

text_schema!(
    /// A username: 1 to 64 letters, digits, `.`, `_` and `-` once surrounding whitespace is
    /// trimmed; compared case-insensitively.
    Username,
    validate::USERNAME_PATTERN,
    None
);

text_schema!(
    /// What a person should look at and why: 1 to 2,000 characters once surrounding
    /// whitespace is trimmed.
    Reason,
    validate::REASON_PATTERN,
    None
);

/// A string of at least one character.
pub struct NonEmpty;

impl PartialSchema for NonEmpty {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .into()
    }
}

/// A sample item's input: variable name → value. Names are identifiers (ASCII letters, digits
/// and `_`, not starting with a digit); the values of one item are at most 1 MiB together.
pub struct ItemInput;

impl PartialSchema for ItemInput {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$")),
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some(
                "Variable name → value. Names are identifiers (ASCII letters, digits and `_`, \
                 not starting with a digit); an item's values are at most 1 MiB together.",
            ))
            .into()
    }
}

/// A regex (no lookaround, which not every JSON Schema reader has) that matches exactly the
/// strings that are none of `words`; with `any_case`, ASCII letters match in either case.
pub fn none_of_pattern(words: &[&str], any_case: bool) -> String {
    fn class(c: char, any_case: bool) -> String {
        let esc = |c: char| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        };
        if any_case && c.is_ascii_alphabetic() {
            format!(
                "{}{}",
                esc(c.to_ascii_lowercase()),
                esc(c.to_ascii_uppercase())
            )
        } else {
            esc(c)
        }
    }
    // The words that continue `prefix`, as a trie walked one character at a time.
    fn node(words: &[Vec<char>], depth: usize, any_case: bool) -> String {
        let terminal = words.iter().any(|w| w.len() == depth);
        let mut next: Vec<char> = words
            .iter()
            .filter_map(|w| w.get(depth))
            .map(|c| if any_case { c.to_ascii_lowercase() } else { *c })
            .collect();
        next.sort_unstable();
        next.dedup();
        let mut alternatives = Vec::new();
        if !terminal {
            alternatives.push(String::new());
        }
        if next.is_empty() {
            alternatives.push("[\\s\\S]+".to_owned());
        } else {
            let all: String = next.iter().map(|c| class(*c, any_case)).collect();
            alternatives.push(format!("[^{all}][\\s\\S]*"));
            for c in next {
                let rest: Vec<Vec<char>> = words
                    .iter()
                    .filter(|w| {
                        w.get(depth)
                            .is_some_and(|d| d.eq_ignore_ascii_case(&c) && (any_case || *d == c))
                    })
                    .cloned()
                    .collect();
                alternatives.push(format!(
                    "[{}]{}",
                    class(c, any_case),
                    node(&rest, depth + 1, any_case)
                ));
            }
        }
        format!("(?:{})", alternatives.join("|"))
    }
    let words: Vec<Vec<char>> = words.iter().map(|w| w.chars().collect()).collect();
    format!("^{}$", node(&words, 0, any_case))
}

/// Provider parameters PromptLooper sets itself, which `extra` may not override.
pub const RESERVED_PARAMS: &[&str] = &["model", "messages", "stream", "system"];

/// `Params::extra`: any other provider parameter, passed through as given.
pub struct ExtraParams;

impl PartialSchema for ExtraParams {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(none_of_pattern(RESERVED_PARAMS, false))),
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some(
                "Any other provider parameter, passed through as given (e.g. \
                 `presence_penalty`); not `model`, `messages`, `stream` or `system`.",
            ))
            .into()
    }
}

/// Headers a webhook cannot set (any case): the transport's and the signature's.
pub const RESERVED_WEBHOOK_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A webhook's extra headers: name → value.
pub struct WebhookHeaders;

impl PartialSchema for WebhookHeaders {
    fn schema() -> RefOr<Schema> {
        let token = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"));
        let free = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(none_of_pattern(RESERVED_WEBHOOK_HEADERS, true)));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(AllOfBuilder::new().item(token).item(free)))
            .additional_properties(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[^\\r\\n\\x00]*$")),
            ))
            .max_properties(Some(20))
            .description(Some(
                "Extra headers sent with every delivery (e.g. an authorization token), at most 20 \
                 and 8 KiB together; write-only. Names are HTTP tokens, not one PromptLooper \
                 sets (Host, Content-Type, Content-Length, Transfer-Encoding, Connection, \
                 User-Agent, webhook-id, webhook-timestamp, webhook-signature); values have no \
                 line breaks.",
            ))
            .into()
    }
}

/// An event type a webhook subscribes to: one of `WEBHOOK_EVENTS` (surrounding whitespace is
/// ignored).
pub struct WebhookEvent;

impl PartialSchema for WebhookEvent {
    fn schema() -> RefOr<Schema> {
        let names: Vec<String> = super::WEBHOOK_EVENTS
            .iter()
            .map(|e| e.replace('.', "\\."))
            .collect();
        let ws = validate::WS_CLASS;
        text(
            &format!("^[{ws}]*(?:{})[{ws}]*$", names.join("|")),
            None,
            &format!(
                "An event type: {} (surrounding whitespace is ignored).",
                super::WEBHOOK_EVENTS.join(", ")
            ),
        )
    }
}

/// An item's 0-based place in the current order (`usize`).
pub struct Index;

impl PartialSchema for Index {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::Custom("uint64".to_owned())))
            .minimum(Some(0))
            .maximum(Some(u64::MAX))
            .description(Some("An item's 0-based place in the current order."))
            .into()
    }
}

/// `ItemRef`: an item by id or by place.
impl PartialSchema for super::ItemRef {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Index::schema())
            .item(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "An item named in a request: its id, or its 0-based place in the current order.",
            ))
            .into()
    }
}

impl ToSchema for super::ItemRef {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ItemRef")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Index::name().into_owned(), Index::schema()));
    }
}

/// An experiment's `scoring_config`: a list of scorers, or `{}` (none, as older experiments
/// stored it).
pub struct ScoringConfig;

impl PartialSchema for ScoringConfig {
    fn schema() -> RefOr<Schema> {
        let list = ArrayBuilder::new()
            .items(RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::Object).build(),
            )))
            .max_items(Some(32))
            .description(Some(
                "Up to 32 scorers, each one flat object `{kind, name, weight, …}` with the \
                 fields its kind takes (see the scorer kinds).",
            ));
        let none = ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(0))
            .description(Some("No scorers, as `[]`."));
        OneOfBuilder::new()
            .item(list)
            .item(none)
            .description(Some("The scorers, in order."))
            .into()
    }
}

impl PartialSchema for super::Dimension {
    fn schema() -> RefOr<Schema> {
        let values = ArrayBuilder::new()
            .items(RefOr::T(Schema::Object(
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .build(),
            )))
            .min_items(Some(1))
            .max_items(Some(1000))
            .description(Some(
                "The values to try, e.g. `[0.1, 0.3, 0.5]` (a grid tries each).",
            ));
        let range = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("min", ObjectBuilder::new().schema_type(Type::Number))
            .required("min")
            .property("max", ObjectBuilder::new().schema_type(Type::Number))
            .required("max")
            .property(
                "step",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                    .exclusive_minimum(Some(0.0))
                    .description(Some(
                        "A grid's step: at most 10,000 values from min to max.",
                    )),
            )
            .description(Some(
                "A range (min ≤ max): a grid steps through it by `step`; a random sweep draws \
                 from it.",
            ));
        OneOfBuilder::new()
            .item(values)
            .item(range)
            .description(Some(
                "A dimension of the parameter space: explicit values, or a numeric range. The \
                 values must suit the parameter (e.g. `temperature` 0 to 2).",
            ))
            .into()
    }
}

named!(
    NonEmpty => "NonEmpty",
    ItemInput => "ItemInput",
    ExtraParams => "ExtraParams",
    WebhookHeaders => "WebhookHeaders",
    WebhookEvent => "WebhookEvent",
    Index => "Index",
    ScoringConfig => "ScoringConfig",
    super::Dimension => "Dimension",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_of_matches_everything_but_the_words() {
        for (words, any_case) in [(RESERVED_PARAMS, false), (RESERVED_WEBHOOK_HEADERS, true)] {
            let re = regex::Regex::new(&none_of_pattern(words, any_case)).unwrap();
            for w in words {
                assert!(!re.is_match(w), "{w}");
                assert!(re.is_match(&format!("{w}x")), "{w}x");
                assert!(re.is_match(&format!("x{w}")), "x{w}");
                assert!(re.is_match(&w[..w.len() - 1]), "{w} cut");
                assert_eq!(re.is_match(&w.to_ascii_uppercase()), !any_case, "{w} upper");
            }
            for other in [
                "",
                "temperature",
                "m",
                "mode",
                "modelx",
                "Stream",
                "x-token",
            ] {
                assert_eq!(
                    re.is_match(other),
                    !words.iter().any(|w| if any_case {
                        w.eq_ignore_ascii_case(other)
                    } else {
                        *w == other
                    }),
                    "{other}"
                );
            }
        }
    }
}
