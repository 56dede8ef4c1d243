//! Sample items as stored: datasets (private to an experiment, or named and shared in a
//! project), their versions and items. Shared with the dashboard, so wasm-safe.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[cfg(feature = "server")]
use utoipa::ToSchema;

/// One stored item of a dataset version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Item {
    /// Stable: the id given at import (an `id` column or key), or one assigned then.
    pub id: String,
    /// Where the item sorts; stays with the item (gaps after deletions).
    pub position: i64,
    #[cfg_attr(feature = "server", schema(value_type = Object))]
    pub input: BTreeMap<String, Value>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// E.g. `train` or `test`.
    #[serde(default)]
    pub split: Option<String>,
}

/// What an experiment's items are, without the items: `GET …/items` reads them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ItemsSummary {
    pub dataset_id: Uuid,
    /// The shared dataset's name (none: the experiment's own items).
    #[serde(default)]
    pub dataset_name: Option<String>,
    /// The version this experiment uses.
    pub version: i64,
    /// The dataset's newest version (another experiment may have moved it on).
    pub latest_version: i64,
    pub count: i64,
    /// Input names in the order they first appear.
    pub fields: Vec<String>,
    /// Input names every item has: what templates may use as `input.<name>`.
    pub common_fields: Vec<String>,
}

/// A page of items, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// Items matching the filter, in this version.
    pub total: i64,
    pub version: i64,
    pub limit: i64,
    pub offset: i64,
}

/// `POST …/items`: items to append (each becomes part of a new version).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewItems {
    #[cfg_attr(feature = "server", schema(min_items = 1))]
    pub items: Vec<super::SampleItem>,
}

/// `PUT …/items/{item_id}`: absent fields are kept; `reference`/`split` null removes them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemUpdate {
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::ItemInput>))]
    pub input: Option<BTreeMap<String, Value>>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[cfg_attr(feature = "server", schema(value_type = Option<String>))]
    pub reference: Option<Option<String>>,
    #[cfg_attr(feature = "server", schema(value_type = Option<Vec<super::schema::ItemText>>, max_items = 32))]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::ItemText>))]
    pub split: Option<Option<String>>,
}

/// What a change to items did: the items written and where the experiment's items now stand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ItemsChanged {
    pub items: Vec<Item>,
    pub summary: ItemsSummary,
}

/// An item named in a request: its id, or its 0-based place in the current order. (Its OpenAPI
/// schema is written out in `schema`.)
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ItemRef {
    Index(usize),
    Id(String),
}

/// What an import did: items written, bad lines skipped (with `skip_invalid`; the first 100
/// listed) and where the items now stand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct ImportReport {
    pub imported: i64,
    pub skipped: i64,
    pub errors: Vec<super::LineError>,
    pub error_count: i64,
    pub items: ItemsSummary,
}

/// A named dataset shared in a project: experiments use one of its versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct Dataset {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub description: String,
    /// The newest version and what it holds.
    pub version: i64,
    pub count: i64,
    pub fields: Vec<String>,
    pub common_fields: Vec<String>,
    /// Experiments using it (any version).
    pub experiments: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/v1/datasets`: a new named dataset, from items given, or from an experiment's own
/// items (which become this dataset; the experiment keeps using them).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    pub project_id: Uuid,
    #[cfg_attr(feature = "server", schema(value_type = super::schema::Name))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_length = 10000))]
    pub description: String,
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(max_items = 10000))]
    pub sample_data: Vec<super::SampleItem>,
    #[serde(default)]
    pub from_experiment: Option<Uuid>,
}

/// `PUT /api/v1/datasets/{id}`: absent fields are kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DatasetUpdate {
    #[cfg_attr(feature = "server", schema(value_type = Option<super::schema::Name>))]
    pub name: Option<String>,
    #[cfg_attr(feature = "server", schema(max_length = 10000))]
    pub description: Option<String>,
}

/// One version of a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, schemars::JsonSchema))]
pub struct DatasetVersion {
    pub version: i64,
    pub count: i64,
    /// Experiments using this version.
    pub experiments: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
